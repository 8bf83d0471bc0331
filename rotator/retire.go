package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Retire is protocol step 9, run on its own schedule after a rotation:
// once the overlap has ended (at once for the immediate policy) it deletes
// the Rotated slot where the policy says so (after, immediate; the
// salesforce-expiry policy lets Salesforce lapse it) and rewrites the app
// path without previous_*. Before the overlap ends it does nothing and
// returns OutcomeSkipped.
//
// When Salesforce must be called in toggle mode, Retire journals the prior
// secret-access value like a rotation does (journal step "retire"), so a
// crash is finished by the next Retire, Rotate or Resume.
func (e *Engine) Retire(ctx context.Context, app App) (Result, error) {
	return e.retire(ctx, app, Actor{Kind: ActorScheduler, Reason: "overlap ended"}, false)
}

// RevokePrevious retires the previous pair now, whatever the policy and the
// overlap: the Rotated slot is deleted (Salesforce stops accepting the pair
// at once) and the path is rewritten without previous_*. It is the
// operator's answer to a leaked previous secret; the caller has checked MFA
// and the two-person rule.
func (e *Engine) RevokePrevious(ctx context.Context, app App, actor Actor) (Result, error) {
	if actor.Kind == "" {
		actor.Kind = ActorOperator
	}
	return e.retire(ctx, app, actor, true)
}

func (e *Engine) retire(ctx context.Context, app App, actor Actor, revoke bool) (Result, error) {
	r, err := e.newRun(app, actor, false)
	if err != nil {
		return Result{App: app.Name}, err
	}
	if app.isOwnECA() {
		return r.res, fmt.Errorf("retire %s: eca %s: %w", app.Name, app.ECA, ErrOwnECA)
	}
	if err := e.lock(ctx, r); err != nil {
		r.res.Outcome = OutcomeSkipped
		return r.res, err
	}
	found, err := e.loadJournal(ctx, r)
	if err != nil {
		return e.retireFail(ctx, r, err)
	}
	if found {
		switch {
		case r.j.Orphaned:
			e.release(ctx, r)
			return r.res, fmt.Errorf("retire %s: %w", app.Name, ErrOrphaned)
		case r.j.Step != StepRetire:
			e.release(ctx, r)
			return r.res, fmt.Errorf("retire %s: rotation %s at step %s: %w", app.Name, r.j.RotationID, r.j.Step, ErrInFlight)
		}
		revoke = revoke || r.j.Extra[ExtraRevoke] == "true"
	}
	return e.retireRun(ctx, r, revoke)
}

// retireRun does the retire under the lease; r may carry a retire journal
// left by a crash.
func (e *Engine) retireRun(ctx context.Context, r *run, revoke bool) (Result, error) {
	stored, meta, err := e.readStore(ctx, r.app.VaultPath)
	if err != nil {
		return e.retireFail(ctx, r, err)
	}
	r.stored, r.meta = stored, meta
	if r.jv == 0 {
		r.j.RotationID = stored.RotationID
	}
	r.res.RotationID, r.res.PreviousKey, r.res.VaultVersion = r.j.RotationID, stored.Previous.Key, meta.Version
	now := e.now()
	due := revoke || r.app.Overlap.Policy == OverlapImmediate || stored.PreviousValidUntil.IsZero() || !now.Before(stored.PreviousValidUntil)
	if stored.Previous.IsZero() || !due {
		// Nothing to retire (or not yet); finish a crashed retire's cleanup.
		if _, err := e.leaveOpening(ctx, r); err != nil {
			return e.retireFail(ctx, r, err)
		}
		if err := e.endRun(ctx, r); err != nil {
			return e.retireFail(ctx, r, err)
		}
		r.res.Outcome, r.res.Step = OutcomeSkipped, StepRetire
		if !due {
			r.res.NextAttemptAt = stored.PreviousValidUntil
		}
		return r.res, nil
	}
	metadata, err := e.retiresByMetadata(ctx, r, revoke, now) // metadata_retire.go
	if err != nil {
		return e.retireFail(ctx, r, err)
	}
	if !metadata && (revoke || r.app.Overlap.Policy != OverlapSalesforceExpiry) {
		if err := e.recordIntent(ctx, r, revoke, stored); err != nil { // L4: trace before the delete
			return e.retireFail(ctx, r, err)
		}
		if err := e.retireSlot(ctx, r, revoke); err != nil {
			return e.retireFail(ctx, r, err)
		}
	}
	next := stored
	next.Previous, next.PreviousValidUntil, next.PreviousStagedID = Credentials{}, time.Time{}, ""
	if err := e.hook("before:retire_write"); err != nil {
		return r.res, err
	}
	v, err := e.o.Store.WriteCredentials(ctx, r.app.VaultPath, next, WriteOptions{CAS: meta.Version, RotationID: stored.RotationID, Lease: &r.lease, Managed: meta.Managed})
	if err != nil {
		return e.retireFail(ctx, r, fmt.Errorf("rewrite %s without previous: %w", r.app.VaultPath, err))
	}
	if err := e.hook("after:retire_write"); err != nil {
		return r.res, err
	}
	r.meta.Version, r.res.VaultVersion = v, v
	// Not journaled: the journal is removed below; a crash in between
	// re-runs the retire, which finds previous_* gone and only leaves.
	if _, err := e.leaveOpening(ctx, r); err != nil {
		return e.retireFail(ctx, r, err)
	}
	t := EventPreviousRetired
	if revoke {
		t = EventPreviousRevoked
	}
	ev := r.event(t, StepRetire, OutcomeOK, nil, map[string]string{"previous_key": stored.Previous.Key, "policy": string(r.app.Overlap.Policy)})
	ev.ConsumerKey = stored.Current.Key
	if err := e.emit(ctx, r, ev); err != nil {
		return e.retireFail(ctx, r, err)
	}
	if err := e.endRun(ctx, r); err != nil {
		return e.retireFail(ctx, r, err)
	}
	r.log.Info("previous credentials retired", zap.String("previous_key", stored.Previous.Key), zap.Bool("revoke", revoke))
	r.res.Outcome, r.res.Step = OutcomeOK, StepRetire
	return r.res, nil
}

// retireSlot deletes the Rotated entry holding the previous key. It needs
// the secret-access setting (all staged routes are gated), hence a journal
// in toggle mode: it is written by the opening itself (before the setting
// changes, I5). A retire that changes no setting writes none: deleting is
// idempotent and a crashed retire simply runs again.
func (e *Engine) retireSlot(ctx context.Context, r *run, revoke bool) error {
	newJournal := func() error {
		r.j = JournalEntry{RotationID: r.stored.RotationID, App: r.app.Name, Step: StepRetire, AppID: r.appRef.ID,
			ConsumerID: r.consumer.ID, BaseVersion: r.meta.Version, Actor: r.actor, StartedAt: e.now()}
		if revoke {
			r.setExtra(ExtraRevoke, "true")
		}
		return nil
	}
	ref, consumers, err := e.retireLookup(ctx, r)
	if err != nil && e.gateMayOpen(r, err) {
		// The reads are gated by the secret-access setting: journal, open
		// it (toggle mode), read again.
		if r.jv == 0 {
			if err := newJournal(); err != nil {
				return err
			}
		}
		if err := e.openSecretAccess(ctx, r); err != nil {
			return err
		}
		ref, consumers, err = e.retireLookup(ctx, r)
	}
	if err != nil {
		return err
	}
	r.appRef = ref
	if r.consumer, err = pickConsumer(r.app, consumers, r.stored.Current.Key, r.j.ConsumerID); err != nil {
		return err
	}
	if r.jv != 0 && (r.j.AppID == "" || r.j.ConsumerID == "") {
		r.j.AppID, r.j.ConsumerID = ref.ID, r.consumer.ID
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	if r.jv == 0 && r.j.Step != StepRetire {
		if err := newJournal(); err != nil {
			return err
		}
	}
	if r.app.SecretAccessMode == SecretAccessAlwaysOn {
		on, err := r.secretAccess(ctx)
		if err != nil {
			return fmt.Errorf("read secret access setting: %w", err)
		}
		if !on {
			return fmt.Errorf("dev hub %s: %w", r.app.DevHub, ErrSecretAccessClosed)
		}
	}
	// Toggle mode: join the opening, which reads the setting once.
	if err := e.openSecretAccess(ctx, r); err != nil {
		return err
	}
	if id := r.stored.PreviousStagedID; id != "" && r.stored.Previous.Key != "" && r.meta.Managed {
		// The rotation recorded the Rotated entry's id in the same
		// version as the previous pair: delete it by id, no listing.
		// Ids are never reused, so this can only delete that entry.
		err := e.deleteRotated(ctx, r, id)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return err
		}
		// Gone (deleted or lapsed), or Salesforce filed the previous pair
		// under another id: list the slot to be sure it is not there.
		r.log.Info("recorded rotated entry not found; listing the staged slot", zap.String("staged_id", id))
	}
	slot, err := e.rotatedSlot(ctx, r, r.stored.Previous.Key)
	if err != nil {
		return err
	}
	if slot.ID == "" {
		return nil // lapsed or already deleted
	}
	if err := e.deleteRotated(ctx, r, slot.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// deleteRotated deletes staged entry id for a retire. A 404 is returned
// as ErrNotFound. Not journaled: the delete is idempotent.
func (e *Engine) deleteRotated(ctx context.Context, r *run, id string) error {
	err := e.mutate(ctx, r, "delete_staged", func() error { return r.iss.DeleteStaged(ctx, r.appRef.ID, r.consumer.ID, id) })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete rotated %s: %w", id, err)
	}
	r.setExtra(ExtraOp, "")
	return err
}

// retireLookup resolves the ECA and lists its consumers.
func (e *Engine) retireLookup(ctx context.Context, r *run) (AppRef, []Consumer, error) {
	return e.lookup(ctx, r)
}

// retireFail ends a failed retire: secret access restored, journal cleared (a
// retire is idempotent and simply runs again), lease released.
func (e *Engine) retireFail(ctx context.Context, r *run, err error) (Result, error) {
	r.res.Step = StepRetire
	if isAbort(err) || errors.Is(err, ErrFenced) {
		return r.res, err
	}
	ctx = context.WithoutCancel(ctx)
	r.res.Outcome = OutcomeFailed
	wrapped := fmt.Errorf("retire %s: %w", r.app.Name, err)
	if rerr := e.restoreSecretAccess(ctx, r); rerr != nil {
		if isAbort(rerr) || errors.Is(rerr, ErrFenced) {
			return r.res, rerr
		}
		wrapped = errors.Join(wrapped, rerr)
	} else if r.jv != 0 {
		if cerr := e.o.Journal.Clear(ctx, r.app.Name, &r.lease); cerr != nil {
			wrapped = errors.Join(wrapped, cerr)
		}
	}
	r.log.Error("retire failed", zap.Error(err))
	_ = e.record(ctx, r, EventStepFailed, StepRetire, OutcomeFailed, err, nil)
	e.release(ctx, r)
	return r.res, wrapped
}

// ClearOrphan is the operator's acknowledgement of an orphaned app: the
// journal keeps its progress (a rotation that already promoted must still
// be finished) but the attempt counter and backoff are reset, so the next
// Rotate or Resume continues it.
func (e *Engine) ClearOrphan(ctx context.Context, app App, actor Actor) error {
	if actor.Kind == "" {
		actor.Kind = ActorOperator
	}
	r, err := e.newRun(app, actor, false)
	if err != nil {
		return err
	}
	if err := e.lock(ctx, r); err != nil {
		return err
	}
	found, err := e.loadJournal(ctx, r)
	if err == nil && (!found || !r.j.Orphaned) {
		err = fmt.Errorf("clear orphan %s: no orphaned journal: %w", app.Name, ErrNotFound)
	}
	if err == nil {
		reason := r.j.Extra[ExtraOrphanReason]
		r.j.Orphaned, r.j.Attempts, r.j.NextAttemptAt = false, 0, time.Time{}
		r.setExtra(ExtraOrphanReason, "")
		if err = e.save(ctx, r); err == nil {
			ev := r.event(EventManualAction, r.j.Step, OutcomeOK, nil, map[string]string{"action": "clear-orphan", "orphan_reason": reason})
			ev.Actor = actor
			err = e.emit(ctx, r, ev)
		}
	}
	e.release(ctx, r)
	return err
}
