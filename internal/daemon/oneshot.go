package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
	"github.com/ecarotator/ecarotator/vault"
)

// lastRotation reads what the scheduler plans from: Vault's rotated_at
// (or, for a managed path without one, its last write) and whether a
// rotation journal is open. The engine reads both again under the app's
// lease before it decides; this read only says whether to ask it.
func lastRotation(ctx context.Context, v *vault.Client, app rotator.App) (at time.Time, journal bool, err error) {
	if _, _, err := v.Load(ctx, app.Name); err == nil {
		journal = true
	} else if !errors.Is(err, rotator.ErrNotFound) {
		return at, false, fmt.Errorf("load journal: %w", err)
	}
	st, meta, err := v.ReadCredentials(ctx, app.VaultPath)
	if err != nil && !errors.Is(err, rotator.ErrNotFound) {
		return at, false, fmt.Errorf("read %s: %w", app.VaultPath, err)
	}
	at = st.RotatedAt
	if at.IsZero() && meta.Managed && !st.Current.IsZero() {
		at = meta.UpdatedAt
	}
	return at, journal, nil
}

// DueOutcome is what one app's one-shot run did.
type DueOutcome struct {
	App string `json:"app"`
	// Due is the scheduler's "when" (scheduler.Due) for the app now, with
	// no jitter: a one-shot run serves a slot as soon as it opens.
	Due scheduler.Decision `json:"due"`
	// Verdict is the daemon's "rotate now?" (Decide), taken under the slot
	// lease; empty when the app was not due and had no open journal.
	Verdict string `json:"verdict,omitempty"`
	// Rotated is true when the engine ran.
	Rotated bool           `json:"rotated"`
	Result  rotator.Result `json:"result"`
	// Locked is true when another holder (a daemon replica) had the app's
	// slot or engine lease: it is rotating the app now.
	Locked bool `json:"locked,omitempty"`
}

// RotateDue is the daemon's scheduled run as a one-shot: for app at now
// it takes the scheduler's "when" (scheduler.Due from Vault's rotated_at,
// with the same stable window offset the daemon uses), and when a run is
// due, or a journal is open, it hands the engine the same ScheduledRun the
// daemon would: the engine decides under the app's own lease, from its one
// journal load and KV read, whether the run still rotates (a slot a daemon
// replica already served is skipped there). A lease held by another
// holder is not a failure: Locked is set and the error is nil.
func RotateDue(ctx context.Context, rt *wire.Runtime, app rotator.App, now time.Time, actor rotator.Actor) (DueOutcome, error) {
	out := DueOutcome{App: app.Name}
	last, journal, err := lastRotation(ctx, rt.Vault, app)
	if err != nil {
		return out, err
	}
	out.Due = scheduler.Due(scheduler.DueInput{
		Now: now, App: app.Name, Schedule: app.Schedule, Window: app.Window, MaxAge: app.MaxAge,
		LastRotation: last,
	})
	if !out.Due.Due && !journal {
		return out, nil
	}
	run := &rotator.ScheduledRun{Reason: out.Due.Reason, Slot: out.Due.Slot}
	if !out.Due.Due {
		// Only an open journal to finish, as the daemon's retry would.
		run = &rotator.ScheduledRun{Reason: scheduler.ReasonRetry}
	}
	res, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: actor, Reason: string(run.Reason), Run: run})
	out.Result = res
	if res.Decision != nil {
		out.Verdict = string(res.Decision.Reason)
	}
	if errors.Is(err, rotator.ErrLocked) {
		out.Locked = true
		return out, nil
	}
	out.Rotated = err != nil || res.Decision == nil || res.Decision.Rotate
	return out, err
}
