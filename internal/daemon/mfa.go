package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// *mfa.Service is the daemon's OperatorGate when mfa.enabled.
var _ OperatorGate = (*mfa.Service)(nil)

// EnableMFA puts the operator API under internal/mfa, on the daemon's own
// Vault client and audit trail: with mfa.enabled (and no Options.Gate),
// rotate-now needs the caller's TOTP code; revoke-previous always opens a
// two-person approval that a second operator grants with
// POST /api/v1/approvals/{id}/approve, which then revokes in the
// background. Call it after New and before Run. mfa.enabled is read once:
// a reload does not switch the gate.
func (d *Daemon) EnableMFA() error {
	if d.rt.Audit == nil {
		return errors.New("daemon: mfa: the audit trail is not open")
	}
	m := d.settings().MFA
	svc, err := mfa.New(mfa.Options{
		Vault: d.rt.Vault, SeedPrefix: m.SeedPrefix, Issuer: m.Issuer,
		Skew: uint(max(m.Skew, 0)), MaxFailures: m.MaxFailures, Lockout: m.Lockout, ApprovalTTL: m.ApprovalTTL,
		Audit: d.rt.Audit, Logger: d.log,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if d.o.Gate == nil && m.Enabled {
		d.o.Gate = svc
	}
	d.mfa = svc // reveal always needs a code, whatever mfa.enabled says
	if d.srv != nil {
		d.srv.SetApprovals(&mfaApprovals{Service: svc, Execute: d.revokeApproved})
	}
	return nil
}

// revokeApproved carries out an approved revoke in the background, like
// operate but without the gate: both operators' codes were checked by the
// approval.
func (d *Daemon) revokeApproved(_ context.Context, a mfa.Approval) (string, error) {
	if a.Action != server.ActionRevoke {
		return "", fmt.Errorf("approval %s: unsupported action %q", a.ID, a.Action)
	}
	app, ok := d.app(a.App)
	if !ok {
		return "", fmt.Errorf("app %s: %w", a.App, rotator.ErrNotFound)
	}
	if d.opsCtx.Err() != nil {
		return "", fmt.Errorf("revoke %s: daemon is stopping: %w", a.App, rotator.ErrUnreachable)
	}
	id := opID()
	actor := a.Actor()
	log := d.log.With(zap.String(rotator.LogKeyApp, a.App), zap.String("action", a.Action), zap.String("operation_id", id),
		zap.String("approval_id", a.ID), zap.String("identity", actor.Identity))
	d.ops.Add(1)
	go func() {
		defer d.ops.Done()
		res, err := d.rt.Engine.RevokePrevious(d.opsCtx, app, actor)
		if err != nil {
			log.Warn("approved revoke failed", zap.Error(err))
			return
		}
		if res.Outcome == rotator.OutcomeOK {
			d.sched.ClearRetry(app.Name) // nothing left to wait for (L2)
			d.metrics.SetPreviousExpiry(app.Name, time.Time{})
			d.notifyApp(notifyRevoked(app, res))
		}
		log.Info("approved revoke done")
	}()
	return id, nil
}
