package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Rotate runs one rotation of app: lock → preflight → expose → stage →
// persist → rotate → verify → commit → finish (design.md). When the app has
// a journal, Rotate resumes it instead of starting over; every step first
// checks whether it is already done.
//
// It returns ErrLocked when another holder has the app (nothing done),
// ErrOrphaned and ErrBackoff when the journal says to wait, and otherwise
// the failing step's error (wrapped), after recording the failure in the
// journal, restoring the secret-access setting and releasing the lease.
func (e *Engine) Rotate(ctx context.Context, app App, req Request) (Result, error) {
	actor := req.Actor
	if req.Reason != "" {
		actor.Reason = req.Reason
	}
	r, err := e.newRun(app, actor, req.Adopt)
	if err != nil {
		return Result{App: app.Name}, err
	}
	if app.isOwnECA() {
		return r.res, fmt.Errorf("rotate %s: eca %s: %w", app.Name, app.ECA, ErrOwnECA)
	}
	if req.DryRun {
		p, err := e.Plan(ctx, app, e.now())
		r.res.Outcome, r.res.Plan = OutcomeSkipped, &p
		return r.res, err
	}
	r.sched = req.Run
	return e.drive(ctx, r, false)
}

// Resume continues the app's journal, if any, as the system actor: the
// daemon calls it for every app at start so that a crashed rotation is
// finished (or its secret access restored while it backs off). Without a journal
// it does nothing and returns OutcomeSkipped.
func (e *Engine) Resume(ctx context.Context, app App) (Result, error) {
	r, err := e.newRun(app, Actor{Kind: ActorSystem, Reason: "resume"}, false)
	if err != nil {
		return Result{App: app.Name}, err
	}
	return e.drive(ctx, r, true)
}

// drive takes the lease and runs the protocol from wherever the journal
// says it stands.
func (e *Engine) drive(ctx context.Context, r *run, resumeOnly bool) (Result, error) {
	if err := e.lock(ctx, r); err != nil {
		if isAbort(err) {
			return r.res, err
		}
		r.res.Outcome = OutcomeSkipped
		return r.res, err
	}
	found, err := e.loadJournal(ctx, r)
	if err != nil {
		return e.fail(ctx, r, StepLock, err)
	}
	if !found && resumeOnly {
		e.release(ctx, r)
		r.res.Outcome = OutcomeSkipped
		return r.res, nil
	}
	if !found && r.sched != nil {
		if rotate, err := e.decideRun(ctx, r); err != nil {
			return e.fail(ctx, r, StepLock, err)
		} else if !rotate {
			e.release(ctx, r)
			r.res.Outcome = OutcomeSkipped
			return r.res, nil
		}
	}
	if found {
		r.res.RotationID, r.res.Attempts = r.j.RotationID, r.j.Attempts
		r.actor = mergeActor(r.j.Actor, r.actor)
		if r.j.Step == StepRetire {
			return e.retireRun(ctx, r, r.j.Extra[ExtraRevoke] == "true")
		}
		if blocked, err := e.blocked(ctx, r); blocked {
			return r.res, err
		}
		r.resumed, r.res.Resumed = true, true
		r.log.Info("resuming rotation", zap.String(LogKeyStep, string(r.j.Step)), zap.Bool("done", r.j.Done))
		if err := e.record(ctx, r, EventRotationResumed, r.j.Step, OutcomeOK, nil, map[string]string{"attempts": fmt.Sprint(r.j.Attempts)}); err != nil {
			return e.fail(ctx, r, r.j.Step, err)
		}
	}
	return e.steps(ctx, r)
}

// decideRun answers, for a scheduled run without a journal, whether it
// still rotates: ScheduledRunChain on the KV path read under the app's
// lease. The lease is what makes the answer hold across replicas: another
// replica's rotation of the same slot either finished before this lease
// was taken (its rotated_at serves the slot) or starts after it is
// released (and then meets this call's rotated_at). The read is kept for
// preflight, so a rotation reads the path once.
func (e *Engine) decideRun(ctx context.Context, r *run) (bool, error) {
	stored, meta, err := e.readStore(ctx, r.app.VaultPath)
	if err != nil {
		return false, err
	}
	r.stored, r.meta, r.storeRead = stored, meta, true
	r.noteStored(stored)
	in := NewInput(r.app, e.now())
	in.Adopt, in.RunReason, in.Slot = r.adopt, r.sched.Reason, r.sched.Slot
	in.SetStored(stored, meta)
	d := ScheduledRunChain.Decide(in)
	r.res.Decision = &d
	if !d.Rotate {
		r.log.Info("scheduled run does not rotate", zap.String(LogKeyReason, string(d.Reason)), zap.String("why", d.Message))
	}
	return d.Rotate, nil
}

// noteStored copies what the caller plans from into the result.
func (r *run) noteStored(st StoredCredentials) {
	r.res.RotatedAt, r.res.PreviousValidUntil, r.res.HasPrevious = st.RotatedAt, st.PreviousValidUntil, !st.Previous.IsZero()
}

// mergeActor keeps the journal's original actor (who started the rotation)
// and notes who resumed it.
func mergeActor(orig, now Actor) Actor {
	if orig.Kind == "" {
		return now
	}
	if now.Identity != "" && now.Identity != orig.Identity {
		orig.Reason = orig.Reason + " (resumed by " + now.Identity + ")"
	}
	return orig
}

// blocked handles an orphaned journal or one in backoff: nothing proceeds,
// but a secret-access setting left open is still restored (I5).
func (e *Engine) blocked(ctx context.Context, r *run) (bool, error) {
	var stop error
	switch {
	case r.j.Orphaned:
		stop = fmt.Errorf("rotate %s: %w: %s", r.app.Name, ErrOrphaned, r.j.Extra[ExtraOrphanReason])
	case e.now().Before(r.j.NextAttemptAt):
		stop = fmt.Errorf("rotate %s: %w until %s", r.app.Name, ErrBackoff, r.j.NextAttemptAt.UTC().Format(time.RFC3339))
	default:
		return false, nil
	}
	r.res.Outcome, r.res.Orphaned, r.res.NextAttemptAt = OutcomeSkipped, r.j.Orphaned, r.j.NextAttemptAt
	if err := e.restoreSecretAccess(ctx, r); err != nil {
		if isAbort(err) || errors.Is(err, ErrFenced) {
			return true, err
		}
		stop = errors.Join(stop, err)
	}
	if err := e.restoreMetadataSecretAccess(ctx, r); err != nil {
		if isAbort(err) || errors.Is(err, ErrFenced) {
			return true, err
		}
		stop = errors.Join(stop, err)
	}
	e.release(ctx, r)
	return true, stop
}

// steps runs the protocol; each step is skipped or reconciled when the
// journal (and a re-read of Salesforce and Vault) shows it already done.
func (e *Engine) steps(ctx context.Context, r *run) (Result, error) {
	// Packaged ECAs rotate through the Metadata API (metadata_steps.go).
	strategy, err := e.runStrategy(ctx, r)
	if err != nil {
		return e.fail(ctx, r, StepPreflight, err)
	}
	if strategy == StrategyMetadata {
		return e.metadataSteps(ctx, r)
	}
	if e.gatedBefore(ctx, r) {
		if err := e.openEarly(ctx, r, errors.New("the dev hub refused reads while the setting was off last time")); err != nil {
			return e.fail(ctx, r, StepPreflight, err)
		}
	}
	err = e.preflight(ctx, r)
	if err != nil && e.gateMayOpen(r, err) {
		// Toggle mode and a read refused while the setting is off: open
		// it (journaled first, I5), then read again.
		if oerr := e.openEarly(ctx, r, err); oerr != nil {
			return e.fail(ctx, r, StepPreflight, oerr)
		}
		err = e.preflight(ctx, r)
	}
	if err != nil {
		// The cached distribution said Local but Salesforce refuses the
		// staged API as for a packaged ECA: read it again (auto) and go
		// on with the metadata strategy (an early opening carries over).
		switched, verr := e.revalidateStrategy(ctx, r, err)
		if switched && verr == nil {
			return e.metadataSteps(ctx, r)
		}
		if switched {
			err = verr
		}
	}
	if err != nil {
		return e.fail(ctx, r, StepPreflight, err)
	}
	if r.jv == 0 || r.j.Step == StepLock {
		if err := e.begin(ctx, r); err != nil {
			return e.fail(ctx, r, StepPreflight, err)
		}
	}
	if r.resumed && r.j.RotationID != "" && r.stored.RotationID == r.j.RotationID && !r.j.Pending.IsZero() && r.stored.Current.Key == r.j.Pending.Key {
		// The app path already holds this rotation's pair: the commit
		// happened before the crash (it is not journaled on its own), so
		// the run goes straight to finish and the setting is not opened
		// again.
		r.advance(StepCommit, true)
	}
	e.saveCache(ctx, r)
	if err := e.stepDone(ctx, r, StepPreflight); err != nil {
		return e.fail(ctx, r, StepPreflight, err)
	}
	type step struct {
		s  Step
		fn func(context.Context, *run) error
	}
	for _, st := range []step{
		{StepExpose, e.expose},
		{StepStage, e.stage},
		{StepRotate, e.rotate},
		{StepVerify, e.verify},
		{StepCommit, e.commit},
		{StepFinish, e.finish},
	} {
		if err := e.renew(ctx, r); err != nil {
			return e.fail(ctx, r, st.s, err)
		}
		if err := st.fn(ctx, r); err != nil {
			return e.fail(ctx, r, st.s, err)
		}
	}
	r.res.Outcome = OutcomeOK
	return r.res, nil
}

// begin starts the journal of a new rotation in memory. Nothing has been
// changed before this point, so a failure before it leaves no trace but
// events. The entry reaches Vault with the first mutation that needs it
// (mutate journals before opening the setting, staging or adopting), so a
// rotation pays one journal write for its start and its first step.
func (e *Engine) begin(ctx context.Context, r *run) error {
	now := e.now()
	early := r.j // a journal openEarly created (Step lock), else zero
	r.j = JournalEntry{
		RotationID: e.o.NewID(), App: r.app.Name, Step: StepPreflight, Done: true,
		AppID: r.appRef.ID, ConsumerID: r.consumer.ID, BaseVersion: r.meta.Version,
		Actor: r.actor, StartedAt: now,
	}
	if r.jv != 0 && early.Step == StepLock {
		r.j.RotationID, r.j.StartedAt = early.RotationID, early.StartedAt
		r.j.PriorSecretAccess, r.j.Extra, r.j.Attempts = early.PriorSecretAccess, early.Extra, early.Attempts
	}
	r.setExtra(ExtraOldKey, r.primary)
	if r.strategy.Strategy != "" {
		r.setExtra(ExtraStrategy, string(r.strategy.Strategy))
		r.setExtra(ExtraStrategyWhy, r.strategy.Why)
	}
	r.res.RotationID = r.j.RotationID
	r.log = r.log.With(zap.String(LogKeyRotationID, r.j.RotationID))
	r.log.Info("rotation started", zap.String(LogKeyReason, r.actor.Reason))
	return e.record(ctx, r, EventRotationStarted, StepPreflight, OutcomeOK, nil, map[string]string{"old_key": r.primary})
}

// fail ends an attempt after err at step. A Hook abort or a lost lease
// returns at once (the process is "dead" or no longer the owner). Otherwise
// the failure is counted in the journal with the next attempt time, the app
// is orphaned after OrphanAfter failures, the secret-access setting is
// restored (I5), events are recorded and the lease is released.
//
// No cleanup lives in a defer: a crash must leave exactly what a real crash
// leaves, and recovery must be Resume's job.
func (e *Engine) fail(ctx context.Context, r *run, step Step, err error) (Result, error) {
	r.res.Step = step
	if isAbort(err) || errors.Is(err, ErrFenced) {
		return r.res, err
	}
	ctx = context.WithoutCancel(ctx) // cleanup runs even when the caller gave up
	if errors.Is(err, ErrLocked) {
		return e.contended(ctx, r, step, err)
	}
	r.res.Outcome = OutcomeFailed
	wrapped := fmt.Errorf("rotate %s: %s: %w", r.app.Name, step, err)
	if r.jv == 0 {
		r.log.Error("rotation failed", zap.String(LogKeyStep, string(step)), zap.Error(err))
		_ = e.record(ctx, r, EventStepFailed, step, OutcomeFailed, err, nil)
		_ = e.record(ctx, r, EventRotationFailed, step, OutcomeFailed, err, nil)
		e.release(ctx, r)
		return r.res, wrapped
	}
	now := e.now()
	if !errors.Is(err, ErrStagedLost) { // that error already rewound the journal to restage
		r.advance(step, false) // the journal names the step that failed; a later attempt resumes there
	}
	r.j.Attempts++
	r.j.LastError = err.Error()
	r.setExtra(ExtraFailedStep, string(step))
	_, wait := e.o.Backoff(r.j.Attempts)
	r.j.NextAttemptAt = now.Add(wait)
	if r.j.Attempts >= e.o.OrphanAfter {
		r.j.Orphaned = true
		r.setExtra(ExtraOrphanReason, fmt.Sprintf("%d failed attempts; last at step %s: %s", r.j.Attempts, step, err.Error()))
	}
	r.res.Attempts, r.res.NextAttemptAt, r.res.Orphaned = r.j.Attempts, r.j.NextAttemptAt, r.j.Orphaned
	// The failure (attempts, backoff, orphaning) is journaled before the
	// setting is restored: a crash during the restore must resume as the
	// failed (or orphaned) attempt it was.
	if serr := e.save(ctx, r); serr != nil {
		r.log.Error("save journal after failure", zap.Error(serr))
	}
	if rerr := e.restoreSecretAccess(ctx, r); rerr != nil {
		if isAbort(rerr) || errors.Is(rerr, ErrFenced) {
			return r.res, rerr
		}
		r.log.Error("restore secret access after failure", zap.Error(rerr))
		wrapped = errors.Join(wrapped, rerr)
		e.closeSecretAccessUnjournaled(ctx, r)
	}
	if rerr := e.restoreMetadataSecretAccess(ctx, r); rerr != nil {
		if isAbort(rerr) || errors.Is(rerr, ErrFenced) {
			return r.res, rerr
		}
		r.log.Error("restore metadata secret access after failure", zap.Error(rerr))
		wrapped = errors.Join(wrapped, rerr)
	}
	if serr := e.save(ctx, r); serr != nil {
		r.log.Error("save journal after failure", zap.Error(serr))
	}
	_ = e.record(ctx, r, EventStepFailed, step, OutcomeFailed, err, nil)
	if r.j.Orphaned {
		r.log.Error("rotation orphaned", zap.String(LogKeyStep, string(step)), zap.Int("attempts", r.j.Attempts), zap.Error(err))
		_ = e.record(ctx, r, EventRotationOrphaned, step, OutcomeFailed, err, map[string]string{"reason": r.j.Extra[ExtraOrphanReason]})
	} else {
		r.log.Warn("rotation attempt failed", zap.String(LogKeyStep, string(step)), zap.Int("attempts", r.j.Attempts),
			zap.Time("next_attempt_at", r.j.NextAttemptAt), zap.Error(err))
		_ = e.record(ctx, r, EventRotationFailed, step, OutcomeFailed, err, map[string]string{"next_attempt_at": r.j.NextAttemptAt.UTC().Format(time.RFC3339)})
	}
	e.release(ctx, r)
	return r.res, wrapped
}

// contended ends an attempt that met another holder mid-run — in toggle
// mode, another rotation of the Dev Hub opening or restoring the shared
// secret-access setting (ErrSettingBusy). That is waiting, not failing: the
// attempt counter, the backoff and the orphan count stay as they were, no
// failure is audited, and the journal keeps its step so the next attempt
// resumes there. Whatever this run holds of the setting is still given back
// (I5) and the lease released; the result is OutcomeSkipped with an error
// wrapping ErrLocked, which callers treat as "look again soon".
func (e *Engine) contended(ctx context.Context, r *run, step Step, err error) (Result, error) {
	r.res.Outcome = OutcomeSkipped
	wrapped := fmt.Errorf("rotate %s: %s: %w", r.app.Name, step, err)
	if rerr := e.restoreSecretAccess(ctx, r); rerr != nil {
		if isAbort(rerr) || errors.Is(rerr, ErrFenced) {
			return r.res, rerr
		}
		wrapped = errors.Join(wrapped, rerr)
		e.closeSecretAccessUnjournaled(ctx, r)
	}
	if rerr := e.restoreMetadataSecretAccess(ctx, r); rerr != nil {
		if isAbort(rerr) || errors.Is(rerr, ErrFenced) {
			return r.res, rerr
		}
		wrapped = errors.Join(wrapped, rerr)
	}
	r.log.Info("rotation waits for another holder", zap.String(LogKeyStep, string(step)), zap.Error(err))
	e.release(ctx, r)
	return r.res, wrapped
}

func isAbort(err error) bool {
	var a *abortError
	return errors.As(err, &a)
}

// closeSecretAccessUnjournaled is a failed attempt's last resort when the
// journal cannot be written (Vault unreachable or sealed): it closes the
// secret-access setting anyway. Leaving an org-wide setting that exposes
// consumer secrets open until Vault returns is worse than one setting change
// the journal does not record, and the change is safe: closing is
// idempotent, the journal still holds the prior value, and the next
// attempt's restoreSecretAccess re-reads the setting before it acts. It only
// acts while this run is a holder of the Dev Hub's shared opening. Other
// holders cannot make progress without Vault either (their journal writes
// fail too), and each re-opens the setting on its next attempt.
func (e *Engine) closeSecretAccessUnjournaled(ctx context.Context, r *run) {
	if r.app.SecretAccessMode != SecretAccessToggle || r.j.PriorSecretAccess == nil || *r.j.PriorSecretAccess || !r.accessHeld {
		return
	}
	if err := r.iss.SetSecretAccess(ctx, false); err != nil {
		r.log.Error("close secret access without journal", zap.Error(err))
		return
	}
	r.log.Warn("secret access restored without a journal entry (journal unavailable); the next attempt re-checks it")
	_ = e.record(ctx, r, EventSecretAccessRestored, StepFinish, OutcomeOK, nil, map[string]string{"value": "false", "journal": "unavailable"})
}
