package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// mfaApprovals adapts an mfa.Service to server.Approvals, for the daemon's
// API. It lives here, not in internal/mfa, so that the TOTP service knows
// nothing of the HTTP layer (issue 14).
// Execute carries out an approved request (the daemon starts the revoke in
// the background under its own lifecycle) and returns an operation id; it
// is called only after the approval was granted and audited.
type mfaApprovals struct {
	Service *mfa.Service
	Execute func(ctx context.Context, a mfa.Approval) (string, error)
}

var _ server.Approvals = (*mfaApprovals)(nil)

// Request implements server.Approvals.
func (s *mfaApprovals) Request(ctx context.Context, app, action string, requester rotator.Actor, code rotator.Secret) (server.ApprovalInfo, error) {
	a, err := s.Service.RequestApproval(ctx, action, app, requester.Identity, code.Reveal(), requester.Reason)
	if err != nil {
		return server.ApprovalInfo{}, mfaServerErr(err)
	}
	return info(a), nil
}

// Lookup implements server.Approvals.
func (s *mfaApprovals) Lookup(ctx context.Context, id string) (server.ApprovalInfo, error) {
	a, _, err := s.Service.Get(ctx, id)
	if err != nil {
		return server.ApprovalInfo{}, mfaServerErr(err)
	}
	return info(a), nil
}

// Approve implements server.Approvals.
func (s *mfaApprovals) Approve(ctx context.Context, id string, approver rotator.Actor, code rotator.Secret) (server.ApprovalInfo, string, error) {
	a, err := s.Service.Approve(ctx, id, approver.Identity, code.Reveal())
	if err != nil {
		return info(a), "", mfaServerErr(err)
	}
	if s.Execute == nil {
		return info(a), "", errors.New("daemon: approvals: no executor configured")
	}
	op, err := s.Execute(ctx, a)
	return info(a), op, err
}

func info(a mfa.Approval) server.ApprovalInfo {
	return server.ApprovalInfo{ID: a.ID, Action: a.Action, App: a.App, Requester: a.Requester, Approver: a.Approver, Status: a.Status, Expires: a.Expires}
}

// mfaServerErr maps the package's errors onto the server's, keeping both in
// the chain for errors.Is.
func mfaServerErr(err error) error {
	switch {
	case errors.Is(err, mfa.ErrNoEntity):
		return fmt.Errorf("%w: %w", server.ErrNoEntity, err)
	case errors.Is(err, mfa.ErrInvalidCode), errors.Is(err, mfa.ErrReplayed), errors.Is(err, mfa.ErrLockedOut), errors.Is(err, mfa.ErrNotEnrolled):
		return fmt.Errorf("%w: %w", server.ErrMFA, err)
	case errors.Is(err, mfa.ErrSameOperator):
		return fmt.Errorf("%w: %w", server.ErrSameOperator, err)
	case errors.Is(err, mfa.ErrApprovalExpired), errors.Is(err, mfa.ErrApprovalUsed):
		return fmt.Errorf("%w: %w", server.ErrApprovalClosed, err)
	case errors.Is(err, mfa.ErrApprovalNotFound):
		return fmt.Errorf("%w: %w", rotator.ErrNotFound, err)
	case errors.Is(err, mfa.ErrInvalidOperator):
		return fmt.Errorf("%w: %w", server.ErrForbidden, err)
	}
	return err
}
