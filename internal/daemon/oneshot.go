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

// SlotLease is the name of an app's slot lease: held around "re-read Vault,
// decide, rotate" so that one slot rotates once, whoever runs it (a daemon
// replica or `ecarotator rotate --due`).
func SlotLease(app string) string { return "slot/" + app }

// ReadInput fills in the Vault side of in (journal, rotated_at, previous
// valid until, managed) for app. Call it under the app's slot lease.
func ReadInput(ctx context.Context, v *vault.Client, app rotator.App, in Input) (Input, error) {
	if j, _, err := v.Load(ctx, app.Name); err == nil {
		in.Journal = &j
	} else if !errors.Is(err, rotator.ErrNotFound) {
		return in, fmt.Errorf("load journal: %w", err)
	}
	st, meta, err := v.ReadCredentials(ctx, app.VaultPath)
	if err != nil && !errors.Is(err, rotator.ErrNotFound) {
		return in, fmt.Errorf("read %s: %w", app.VaultPath, err)
	}
	in.RotatedAt, in.PreviousValidUntil = st.RotatedAt, st.PreviousValidUntil
	in.Managed = meta.Managed && !st.Current.IsZero()
	if in.RotatedAt.IsZero() && in.Managed {
		in.RotatedAt = meta.UpdatedAt
	}
	return in, nil
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

// RotateDue is the daemon's scheduled run as a one-shot: for app at now it
// takes the scheduler's "when" (scheduler.Due from Vault's rotated_at, no
// jitter), then, under the same slot lease the daemon uses, re-reads Vault
// and asks Decide, and rotates when Decide says so. An open journal is
// always looked at (the daemon would resume it). A lease held by another
// holder is not a failure: Locked is set and the error is nil.
func RotateDue(ctx context.Context, rt *wire.Runtime, app rotator.App, now time.Time, holder string, actor rotator.Actor) (DueOutcome, error) {
	out := DueOutcome{App: app.Name}
	ttl := rt.Cfg.Vault.LockTTL.D()
	lease, err := rt.Vault.Acquire(ctx, SlotLease(app.Name), holder, ttl)
	if err != nil {
		if errors.Is(err, rotator.ErrLocked) {
			out.Locked = true
			return out, nil
		}
		return out, fmt.Errorf("slot lease: %w", err)
	}
	kaCtx, stopKA := context.WithCancel(ctx)
	lost := rt.Vault.KeepAlive(kaCtx, lease, ttl)
	defer func() {
		stopKA()
		for range lost { // a renewal error only lets another holder in: it meets the engine's lease
		}
		_ = rt.Vault.Release(context.WithoutCancel(ctx), lease)
	}()

	in, err := ReadInput(ctx, rt.Vault, app, Input{Now: now, Schedule: app.Schedule, MaxAge: app.MaxAge, Adopt: app.Adopt})
	if err != nil {
		return out, err
	}
	out.Due = scheduler.Due(scheduler.DueInput{
		Now: now, Schedule: app.Schedule, Window: app.Window, MaxAge: app.MaxAge,
		LastRotation: in.RotatedAt,
	})
	if !out.Due.Due && in.Journal == nil {
		return out, nil
	}
	in.Reason, in.Slot = out.Due.Reason, out.Due.Slot
	if !out.Due.Due {
		in.Reason, in.Slot = scheduler.ReasonRetry, time.Time{}
	}
	v := Decide(in)
	out.Verdict = v.Reason
	if v.Action != ActRotate {
		return out, nil
	}
	out.Rotated = true
	res, err := rt.Engine.Rotate(ctx, app, rotator.Request{Actor: actor, Reason: string(in.Reason)})
	out.Result = res
	if errors.Is(err, rotator.ErrLocked) {
		out.Locked = true
		return out, nil
	}
	return out, err
}
