package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/rotator"
)

// ApprovalInfo is the public view of a two-person approval. It holds no
// secret.
type ApprovalInfo struct {
	ID        string    `json:"id"`
	Action    string    `json:"action"`
	App       string    `json:"app"`
	Requester string    `json:"requester"`
	Approver  string    `json:"approver,omitempty"`
	Status    string    `json:"status"`
	Expires   time.Time `json:"expires"`
}

// Approvals backs the two-person rule. With Options.Approvals set,
// POST /api/v1/apps/{name}/revoke-previous opens a pending approval
// (Request) instead of revoking, and a second operator carries it out with
// POST /api/v1/approvals/{id}/approve. The daemon implements it over internal/mfa.
type Approvals interface {
	// Request opens a pending approval of action on app; requester proves
	// code. Errors matching ErrMFA answer 403 mfa_required.
	Request(ctx context.Context, app, action string, requester rotator.Actor, code rotator.Secret) (ApprovalInfo, error)
	// Lookup returns approval id; rotator.ErrNotFound when there is none.
	Lookup(ctx context.Context, id string) (ApprovalInfo, error)
	// Approve grants id as approver, who proves code, and starts the
	// approved action; it returns the approval and the operation id.
	// ErrSameOperator, ErrApprovalClosed and ErrMFA say why it refused.
	Approve(ctx context.Context, id string, approver rotator.Actor, code rotator.Secret) (ApprovalInfo, string, error)
}

// Errors an Approvals implementation returns to choose an HTTP status.
var (
	// ErrSameOperator: the requester tried to approve their own request (403).
	ErrSameOperator = errors.New("server: a second, different operator must approve")
	// ErrApprovalClosed: the approval expired or was already used (409).
	ErrApprovalClosed = errors.New("server: approval expired or already used")
)

// ApprovalAccepted is the 202 answer to a revoke request (status
// "pending_approval") and to an approval (status "approved", with the
// operation id).
type ApprovalAccepted struct {
	RequestID   string       `json:"request_id"`
	Status      string       `json:"status"`
	Approval    ApprovalInfo `json:"approval"`
	OperationID string       `json:"operation_id,omitempty"`
}

// requestApproval answers revoke-previous when approvals are configured:
// the caller (already authorised for the action) proves their code and a
// pending approval is returned.
func (s *Server) requestApproval(w http.ResponseWriter, r *http.Request, app, action string, actor rotator.Actor, code rotator.Secret) {
	if code.IsZero() {
		s.failErr(w, r, action, fmt.Errorf("%s %s: %w", action, app, ErrMFA))
		return
	}
	a, err := s.opts.Approvals.Request(r.Context(), app, action, actor, code)
	if err != nil {
		s.failApproval(w, r, "request approval", err)
		return
	}
	s.opts.Logger.Info("approval requested", zap.String("request_id", requestID(r.Context())), zap.String(logging.KeyApp, app),
		zap.String("action", action), zap.String("identity", actor.Identity), zap.String("approval_id", a.ID))
	writeJSON(w, http.StatusAccepted, ApprovalAccepted{RequestID: requestID(r.Context()), Status: "pending_approval", Approval: a})
}

// approve handles POST /api/v1/approvals/{id}/approve. The order mirrors
// action: no token → 401; the approval is looked up only for a caller
// with a token, and the caller must hold the approval's own control-path
// capability (e.g. revoke on its app) before the body is read.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	if s.opts.Approvals == nil || s.opts.Authorizer == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "approvals are not available")
		return
	}
	token := bearer(r)
	if token.IsZero() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
		s.fail(w, r, http.StatusUnauthorized, CodeUnauthenticated, "a Vault token is required (X-Vault-Token or Authorization: Bearer)")
		return
	}
	id := r.PathValue("id")
	pending, err := s.opts.Approvals.Lookup(r.Context(), id)
	if err != nil {
		s.failApproval(w, r, "look up approval", err)
		return
	}
	identity, err := s.opts.Authorizer.Authorize(r.Context(), token, pending.App, pending.Action)
	if err != nil {
		if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) && !errors.Is(err, rotator.ErrPermission) {
			err = fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)
		}
		s.failErr(w, r, "authorize approval", err)
		return
	}
	req, status, code, msg := decodeApproval(r)
	if status != 0 {
		s.fail(w, r, status, code, msg)
		return
	}
	actor := rotator.Actor{Kind: rotator.ActorOperator, Identity: identity, Reason: req.Reason}
	a, op, err := s.opts.Approvals.Approve(r.Context(), id, actor, rotator.NewSecret(req.MFACode))
	if err != nil {
		s.failApproval(w, r, "approve", err)
		return
	}
	s.opts.Logger.Info("approval granted", zap.String("request_id", requestID(r.Context())), zap.String(logging.KeyApp, a.App),
		zap.String("action", a.Action), zap.String("identity", identity), zap.String("approval_id", a.ID), zap.String("operation_id", op))
	writeJSON(w, http.StatusAccepted, ApprovalAccepted{RequestID: requestID(r.Context()), Status: "approved", Approval: a, OperationID: op})
}

// failApproval answers an Approvals error; the rest goes through classify.
func (s *Server) failApproval(w http.ResponseWriter, r *http.Request, what string, err error) {
	var status int
	var code, msg string
	switch {
	case errors.Is(err, rotator.ErrNotFound):
		status, code, msg = http.StatusNotFound, CodeNotFound, "approval not found"
	case errors.Is(err, ErrSameOperator):
		status, code, msg = http.StatusForbidden, CodeForbidden, "a second, different operator must approve"
	case errors.Is(err, ErrApprovalClosed):
		status, code, msg = http.StatusConflict, CodeConflict, "approval expired or already used"
	default:
		s.failErr(w, r, what, err)
		return
	}
	s.opts.Logger.Warn(what+" refused", zap.String("request_id", requestID(r.Context())), logging.Err(err))
	s.fail(w, r, status, code, msg)
}

// ApprovalRequest is the JSON body of POST /api/v1/approvals/{id}/approve.
type ApprovalRequest struct {
	// MFACode is the approver's current TOTP code (required).
	MFACode string `json:"mfa_code"`
	// Reason is recorded in the audit trail (optional).
	Reason string `json:"reason,omitempty"`
}

func decodeApproval(r *http.Request) (req ApprovalRequest, status int, code, msg string) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return req, http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is too large"
	case errors.Is(err, io.EOF):
		return req, http.StatusForbidden, CodeMFARequired, `a JSON body with "mfa_code" is required`
	case err != nil:
		return req, http.StatusBadRequest, CodeBadRequest, "request body is not valid JSON for an approval"
	}
	if dec.More() {
		return req, http.StatusBadRequest, CodeBadRequest, "request body holds more than one JSON value"
	}
	req.MFACode, req.Reason = strings.TrimSpace(req.MFACode), strings.TrimSpace(req.Reason)
	if req.MFACode == "" {
		return req, http.StatusForbidden, CodeMFARequired, "a valid MFA code is required"
	}
	if len(req.Reason) > 1024 {
		return req, http.StatusBadRequest, CodeBadRequest, `"reason" is longer than 1024 bytes`
	}
	if HasControl(req.Reason) {
		return req, http.StatusBadRequest, CodeBadRequest, `"reason" must not contain control characters`
	}
	return req, 0, "", ""
}

// SetApprovals sets Options.Approvals after New (the daemon builds its
// approvals on the Vault client it wires after the server exists). Call it
// before Run: handlers read the field without locking.
func (s *Server) SetApprovals(a Approvals) { s.opts.Approvals = a }

// HasApprovals reports whether revoke-previous is under the two-person
// rule (for /readyz and status).
func (s *Server) HasApprovals() bool { return s.opts.Approvals != nil }
