package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
)

// revealWrapTTL is how long the wrapping token of a reveal stays valid.
const revealWrapTTL = 2 * time.Minute

var _ server.Revealer = (*api)(nil)

// ErrRevealUnavailable: the daemon was built without EnableMFA, so it has
// no second factor to check and does not reveal.
var ErrRevealUnavailable = errors.New("reveal needs the daemon's MFA service (EnableMFA)")

// Reveal implements server.Revealer (M6): the daemon, not the operator's
// own process, checks the second factor, audits secret.revealed (fail
// closed: no event, no reveal) and hands the credential out wrapped in a
// single-use Vault token, so the operator needs no read right on the app's
// path and the secret never appears in an HTTP answer.
func (a *api) Reveal(ctx context.Context, name string, actor rotator.Actor) (server.Revealed, error) {
	d := (*Daemon)(a)
	app, ok := d.app(name)
	if !ok {
		return server.Revealed{}, fmt.Errorf("app %s: %w", name, rotator.ErrNotFound)
	}
	if d.mfa == nil {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w: %w", name, ErrRevealUnavailable, rotator.ErrPermission)
	}
	code := server.MFACode(ctx)
	if code.IsZero() {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w", name, server.ErrMFA)
	}
	if err := d.mfa.Verify(ctx, actor.Identity, code.Reveal(), server.ActionReveal, name); err != nil {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w: %w", name, gateErr(err), err)
	}
	stored, meta, err := d.rt.Vault.ReadCredentials(ctx, app.VaultPath)
	if err != nil {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w", name, err)
	}
	ev := rotator.Event{
		Type: rotator.EventSecretRevealed, Time: d.o.Clock.Now().UTC(), App: app.Name, Org: app.DevHub, ECA: app.ECA,
		ConsumerKey: stored.Current.Key, RotationID: stored.RotationID, Outcome: rotator.OutcomeOK, Actor: actor,
		VaultPath: app.VaultPath, VaultVersion: meta.Version, Fingerprint: d.rt.Audit.Fingerprint(stored.Current.Secret),
		Details: map[string]string{"via": "api", "delivery": "response-wrapped"},
	}
	if err := d.rt.Audit.Record(ctx, ev); err != nil {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w: %w", name, rotator.ErrAudit, err)
	}
	tok, err := d.rt.Vault.Wrap(ctx, map[string]any{
		"consumer_key": stored.Current.Key, "consumer_secret": stored.Current.Secret.Reveal(),
	}, revealWrapTTL)
	if err != nil {
		return server.Revealed{}, fmt.Errorf("reveal %s: %w", name, err)
	}
	return server.Revealed{App: name, ConsumerKey: stored.Current.Key, WrapToken: tok.Reveal(), WrapTTL: revealWrapTTL.String()}, nil
}

// gateErr is the server error for a refused second factor: a token
// without an identity entity is named as such (M1), anything else is a
// missing or wrong code.
func gateErr(err error) error {
	if errors.Is(err, mfa.ErrNoEntity) {
		return server.ErrNoEntity
	}
	return server.ErrMFA
}
