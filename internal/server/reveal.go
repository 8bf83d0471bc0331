package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/rotator"
)

// ActionReveal is the control-path action for reveal.
const ActionReveal = "reveal"

// Revealed is the answer to POST /api/v1/apps/{name}/reveal. It never
// holds the secret itself: WrapToken is a single-use Vault response-
// wrapping token (sys/wrapping/unwrap) that yields the consumer key and
// secret once, within WrapTTL. A wrapping token that was already used, or
// is unwrapped by someone else first, shows the interception.
type Revealed struct {
	RequestID   string `json:"request_id"`
	App         string `json:"app"`
	ConsumerKey string `json:"consumer_key"` // public client id
	WrapToken   string `json:"wrap_token"`
	WrapTTL     string `json:"wrap_ttl"`
}

// Revealer is optionally implemented by the Controller: reveal a
// credential to an operator after their second factor (MFA code in the
// context), audited before the answer is given.
type Revealer interface {
	Reveal(ctx context.Context, app string, actor rotator.Actor) (Revealed, error)
}

// reveal handles POST /api/v1/apps/{name}/reveal like action: 401 without
// a token, authorization on the reveal control path before the body is
// read, then a required MFA code.
func (s *Server) reveal(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("name")
	rv, ok := s.opts.Controller.(Revealer)
	if !ok || s.opts.Authorizer == nil {
		s.fail(w, r, http.StatusNotImplemented, CodeNotImplemented, "reveal is not available")
		return
	}
	token := bearer(r)
	if token.IsZero() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ecarotator"`)
		s.fail(w, r, http.StatusUnauthorized, CodeUnauthenticated, "a Vault token is required (X-Vault-Token or Authorization: Bearer)")
		return
	}
	identity, err := s.opts.Authorizer.Authorize(r.Context(), token, app, ActionReveal)
	if err != nil {
		if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) && !errors.Is(err, rotator.ErrPermission) {
			err = fmt.Errorf("%w: %w", rotator.ErrUnreachable, err)
		}
		s.failErr(w, r, "authorize reveal", err)
		return
	}
	req, status, code, msg := decodeAction(r)
	if status != 0 {
		s.fail(w, r, status, code, msg)
		return
	}
	if req.MFACode == "" {
		s.failErr(w, r, "reveal", fmt.Errorf("reveal %s: %w", app, ErrMFA))
		return
	}
	ctx := WithMFACode(r.Context(), rotator.NewSecret(req.MFACode))
	actor := rotator.Actor{Kind: rotator.ActorOperator, Identity: identity, Reason: req.Reason}
	out, err := rv.Reveal(ctx, app, actor)
	if err != nil {
		s.failErr(w, r, "reveal", err)
		return
	}
	out.RequestID = requestID(ctx)
	s.opts.Logger.Info("credential revealed (wrapped)", zap.String("request_id", out.RequestID), zap.String(logging.KeyApp, app),
		zap.String("identity", identity))
	writeJSON(w, http.StatusOK, out)
}
