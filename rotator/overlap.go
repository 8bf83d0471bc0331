package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrPreviousInOverlap: an operator asked for a rotation while the previous
// pair is still inside its overlap. Staging a new pair needs the consumer's
// single staged slot, which then holds the previous pair (Rotated): the
// rotation would delete it, which revokes it at once. That is what
// revoke-previous guards with MFA and two people, so rotate-now does not do
// it on one operator's word (security review H3). Scheduled rotations keep
// their own rule (ReasonRetiring: wait for the overlap to end).
var ErrPreviousInOverlap = errors.New("the previous pair is still inside its overlap: ending it early is a revocation")

// OverlapError is the refusal of a rotate-now during an overlap: it names
// the end of the overlap and how to ask for the two-person approval.
type OverlapError struct {
	App         string
	PreviousKey string
	ValidUntil  time.Time // zero when Vault does not know the end
}

// Error names previous_valid_until and the way forward.
func (e *OverlapError) Error() string {
	until := "an unknown time (previous_valid_until is not set)"
	if !e.ValidUntil.IsZero() {
		until = e.ValidUntil.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("rotate %s: the previous pair stays valid until %s (previous_valid_until); rotating now would revoke it, "+
		"which needs the two-person approval of revoke-previous: request it with `ecarotator retire %s --revoke --code <code>` "+
		"(or POST /api/v1/apps/%s/revoke-previous), have a second operator run `ecarotator approve <id> --code <code>`, then rotate again; "+
		"or wait until the overlap ends", e.App, until, e.App, e.App)
}

// Is makes errors.Is(err, ErrPreviousInOverlap) true.
func (e *OverlapError) Is(target error) bool { return target == ErrPreviousInOverlap }

// InOverlap reports whether st still holds a previous pair whose overlap
// has not ended at now. A previous pair without a known end counts as in
// overlap: nothing says it is safe to delete. Pure, for the decision table.
func InOverlap(st StoredCredentials, now time.Time) bool {
	if st.Previous.IsZero() {
		return false
	}
	return st.PreviousValidUntil.IsZero() || now.Before(st.PreviousValidUntil)
}

// CheckOverlap refuses (an *OverlapError) an operator's rotation of app
// while the previous pair is inside its overlap. Scheduler and system
// actors pass: their rule is the scheduling policy's. A missing app path
// passes (nothing to revoke). Every operator entry point calls it before
// Rotate: the daemon's rotate-now before it accepts the request (the
// rotation runs in the background) and the CLI's rotate. Rotate itself does
// not, so that a resumed journal and the engine's own tests keep working.
func (e *Engine) CheckOverlap(ctx context.Context, app App, actor Actor) error {
	if actor.Kind != ActorOperator {
		return nil
	}
	// An open rotation journal is resumed, not started: the request that
	// began it passed this check, and its own new pair may already be the
	// app's current one (its previous pair is then the one it replaced).
	if j, _, err := e.o.Journal.Load(ctx, app.Name); err == nil && j.Step != StepRetire {
		return nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("rotate %s: read journal: %w", app.Name, err)
	}
	st, _, err := e.o.Store.ReadCredentials(ctx, app.VaultPath)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rotate %s: read %s: %w", app.Name, app.VaultPath, err)
	}
	if InOverlap(st, e.now()) {
		return &OverlapError{App: app.Name, PreviousKey: st.Previous.Key, ValidUntil: st.PreviousValidUntil}
	}
	return nil
}
