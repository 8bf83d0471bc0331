package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// preflight is protocol step 2. It only reads: the ECA and its consumer,
// Vault's current version, Salesforce's primary key (drift check) and,
// when the secret-access setting is already on and the journal names a
// staged or pending pair, the staged slot (foreign check; a fresh
// rotation learns about a foreign entry from its refused POST, see stage).
// Every stop it makes happens before anything is changed, except the
// journaled, always-restored opening of the setting (openEarly).
//
// When this call opened (or joined) the setting before preflight, the
// primary key comes from the settle poll (part=keyandsecret) that waits
// for the setting to apply, and the drift check is exact: Salesforce's
// primary pair must be Vault's current pair, secret included. The current
// pair's token check then runs first, during the setting's delay.
func (e *Engine) preflight(ctx context.Context, r *run) error {
	ref, consumers, err := e.lookup(ctx, r)
	if err != nil {
		return err
	}
	r.appRef = ref
	stored, meta := r.stored, r.meta
	if !r.storeRead {
		// Read once per call: a scheduled run read it already, under this
		// lease, and every later write is fenced by it.
		if stored, meta, err = e.readStore(ctx, r.app.VaultPath); err != nil {
			return err
		}
		r.stored, r.meta, r.storeRead = stored, meta, true
	}
	hint := r.j.ConsumerID
	if hint == "" && r.cache.hit && r.app.ConsumerID == "" {
		hint = r.cache.entry.ConsumerID
	}
	c, err := pickConsumer(r.app, consumers, stored.Current.Key, hint)
	if err != nil {
		return err
	}
	r.consumer = c
	managed := meta.Managed && !stored.Current.IsZero()
	// A journal exists only once a rotation passed this check, adoption
	// permission included, so a resumed rotation may finish adopting.
	if !managed && !r.adopt && !r.done(StepPreflight) {
		return fmt.Errorf("vault path %s: %w", r.app.VaultPath, ErrNotManaged)
	}
	checkPair := managed && r.j.Pending.IsZero() && !r.done(StepStage)
	settle := r.settlesInPreflight()
	if settle && checkPair {
		// Needs no setting: runs while the opening applies.
		if err := e.checkCurrentPair(ctx, r); err != nil {
			return err
		}
		checkPair = false
	}
	var pair Credentials
	readPrimary := func() error {
		if !settle {
			var err error
			r.primary, err = r.iss.PrimaryKey(ctx, r.appRef.ID, r.consumer.ID)
			return err
		}
		var err error
		pair, err = e.settleSecretAccess(ctx, r)
		r.primary = pair.Key
		return err
	}
	err = readPrimary()
	if err != nil && errors.Is(err, ErrNotFound) && r.cache.hit {
		// The cached identifiers no longer match Salesforce: look the ECA
		// and its consumers up again, once.
		r.log.Info("cached eca identifiers no longer match; looking the ECA up again", zap.Error(err))
		r.cache.hit, r.cache.entry = false, JournalEntry{}
		if ref, consumers, err = e.lookup(ctx, r); err != nil {
			return err
		}
		r.appRef = ref
		if c, err = pickConsumer(r.app, consumers, stored.Current.Key, r.j.ConsumerID); err != nil {
			return err
		}
		r.consumer = c
		err = readPrimary()
	}
	if err != nil {
		return fmt.Errorf("read primary key: %w", err)
	}
	if settle && r.primary == "" {
		return fmt.Errorf("read primary key: Salesforce returned none: %w", ErrNotFound)
	}
	if r.consumer.Key == "" {
		r.consumer.Key = r.primary
	}
	if managed && r.primary != stored.Current.Key && (r.j.Pending.Key == "" || r.primary != r.j.Pending.Key) {
		details := map[string]string{"salesforce_key": r.primary, "vault_key": stored.Current.Key}
		r.log.Error("drift detected", zap.String("salesforce_key", r.primary), zap.String("vault_key", stored.Current.Key))
		if err := e.record(ctx, r, EventDriftDetected, StepPreflight, OutcomeDenied, nil, details); err != nil {
			return err
		}
		return fmt.Errorf("salesforce %s, vault %s: %w", r.primary, stored.Current.Key, ErrDrift)
	}
	if managed && settle && r.primary == stored.Current.Key && !pair.Secret.Equal(stored.Current.Secret) {
		// Same key, another secret: Vault does not hold Salesforce's pair.
		details := map[string]string{"salesforce_key": r.primary, "vault_key": stored.Current.Key, "why": "secret differs"}
		r.log.Error("drift detected: the primary secret differs from vault's", zap.String("salesforce_key", r.primary))
		if err := e.record(ctx, r, EventDriftDetected, StepPreflight, OutcomeDenied, nil, details); err != nil {
			return err
		}
		return fmt.Errorf("salesforce's primary secret for key %s is not vault's: %w", r.primary, ErrDrift)
	}
	if checkPair {
		if err := e.checkCurrentPair(ctx, r); err != nil {
			return err
		}
	}
	on, err := r.secretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read secret access setting: %w", err)
	}
	if !on && r.app.SecretAccessMode == SecretAccessAlwaysOn {
		return fmt.Errorf("dev hub %s: %w", r.app.DevHub, ErrSecretAccessClosed)
	}
	if on && !r.done(StepCommit) && !r.postsFirst() {
		return e.inspectStaged(ctx, r)
	}
	r.staged = nil
	return nil
}

func (e *Engine) readStore(ctx context.Context, path string) (StoredCredentials, StoreMeta, error) {
	stored, meta, err := e.o.Store.ReadCredentials(ctx, path)
	if errors.Is(err, ErrNotFound) {
		return StoredCredentials{}, StoreMeta{}, nil
	}
	if err != nil {
		return StoredCredentials{}, StoreMeta{}, fmt.Errorf("read vault path %s: %w", path, err)
	}
	return stored, meta, nil
}

// pickConsumer resolves the consumer to rotate: the one the journal already
// names, the configured consumer id, the only consumer, or the one whose key
// Vault holds. With several consumers and no way to tell, it refuses rather
// than take the first.
func pickConsumer(app App, consumers []Consumer, vaultKey, journalID string) (Consumer, error) {
	id := journalID
	if id == "" {
		id = app.ConsumerID
	}
	if id != "" {
		for _, c := range consumers {
			if c.ID == id {
				return c, nil
			}
		}
		return Consumer{}, fmt.Errorf("consumer %s of eca %s: %w", id, app.ECA, ErrNotFound)
	}
	switch len(consumers) {
	case 0:
		return Consumer{}, fmt.Errorf("eca %s has no consumers: %w", app.ECA, ErrNotFound)
	case 1:
		return consumers[0], nil
	}
	if vaultKey != "" {
		for _, c := range consumers {
			if c.Key == vaultKey {
				return c, nil
			}
		}
	}
	return Consumer{}, fmt.Errorf("eca %s has %d consumers and none matches vault's key: %w", app.ECA, len(consumers), ErrConsumerAmbiguous)
}

// inspectStaged reads the staged slot and stops on an Active credential
// this rotation did not create. An Active entry counts as ours when the
// journal names it, or when the journal says a POST was started and no
// pending pair was persisted (the crash-between-POST-and-persist case).
func (e *Engine) inspectStaged(ctx context.Context, r *run) error {
	list, err := r.iss.Staged(ctx, r.appRef.ID, r.consumer.ID)
	if err != nil {
		return fmt.Errorf("read staged slot: %w", err)
	}
	r.staged = list
	for _, sc := range list {
		if sc.Status != StagedActive || r.ours(sc) {
			continue
		}
		return e.foreignStaged(ctx, r, sc, StepPreflight)
	}
	return nil
}

// foreignStaged audits an Active staged entry this rotation did not create
// and returns ErrForeignStaged: the rotation stops with the entry left as
// it is.
func (e *Engine) foreignStaged(ctx context.Context, r *run, sc StagedCredential, step Step) error {
	details := map[string]string{"staged_id": sc.ID, "staged_key": sc.Key, "staged_created": sc.Created.UTC().Format(time.RFC3339)}
	r.log.Error("foreign staged credential", zap.String("staged_id", sc.ID), zap.String("staged_key", sc.Key))
	if err := e.record(ctx, r, EventForeignStaged, step, OutcomeDenied, nil, details); err != nil {
		return err
	}
	return fmt.Errorf("staged %s (key %s): %w", sc.ID, sc.Key, ErrForeignStaged)
}

// postsFirst reports whether stage may POST without reading the slot
// first: the journal names no staged or pending pair and no POST of this
// rotation was started, so nothing in the slot can be this rotation's.
//
// Why that is safe: POST staged on an occupied slot is refused and creates
// nothing (salesforce-eca-api.md §3.5 "one staged credential per
// consumer", §8; sfsim answers OccupiedSlotStatus/Code, 400 INVALID_INPUT
// by default, and the client maps a 409, a configured code or any 4xx
// with a visible entry to ErrSlotOccupied). A refused POST is followed by
// the read the slow path would have made first (stage), so a foreign
// Active entry still stops the rotation untouched and audited, and a
// Rotated leftover is still deleted with its trace. It assumes Salesforce
// never replaces or adds to an occupied slot on POST — the documented
// single slot; an ambiguous POST (no answer) is re-read as before.
//
// A distribution state taken from a cache entry whose ids this call did
// not use is not trusted for it: the read first is what finds a packaged
// ECA (ErrPackagedStaged) while the journal still allows switching to the
// metadata strategy (revalidateStrategy).
//
// A path still to be adopted is not POSTed to first either: adoption
// writes Vault (expose), and a foreign entry must stop the run before it.
// Nor is one whose overlap is still on (see below).
func (r *run) postsFirst() bool {
	if r.cache.distHit && !r.cache.hit {
		return false
	}
	if !r.meta.Managed || r.stored.Current.IsZero() {
		return false
	}
	if !r.stored.Previous.IsZero() {
		// An overlap is on: the slot most likely still holds its Rotated
		// entry, which a POST would only be refused by. Read first.
		return false
	}
	return r.j.Pending.IsZero() && r.j.StagedID == "" && stepOrder[r.j.Step] < stepOrder[StepStage] &&
		r.j.Extra[ExtraStageStartedAt] == "" && r.j.Extra[ExtraSettling] == ""
}

// refusedPost reports whether a POST staged that reached Salesforce was
// answered with a refusal that created nothing (slot occupied or another
// client error), as opposed to an unknown outcome or a pause.
func refusedPost(err error) bool {
	return err != nil && !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrRateLimited) &&
		!errors.Is(err, ErrFenced) && !isAbort(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (r *run) ours(sc StagedCredential) bool {
	if r.jv == 0 {
		return false
	}
	if (r.j.StagedID != "" && sc.ID == r.j.StagedID) || (r.j.Pending.Key != "" && sc.Key == r.j.Pending.Key) {
		return true
	}
	if r.j.Step != StepStage || r.j.Done || !r.j.Pending.IsZero() {
		return false
	}
	// A POST was started and its pair never persisted. The entry is ours
	// unless it predates that POST (allowing for clock skew with Salesforce).
	// Without the start time (a journal of an older version, or a POST
	// that was refused and unmarked, see stage) it is ours only while a
	// POST may be in flight.
	started, err := time.Parse(time.RFC3339Nano, r.j.Extra[ExtraStageStartedAt])
	if err != nil {
		return r.j.Extra[ExtraOp] == "stage"
	}
	skew := stagedClockSkew
	if r.j.Extra[extraStageUnread] != "" {
		// The POST went out without reading the slot first (postsFirst):
		// a foreign entry made shortly before it looks like ours here,
		// so the allowance is kept tight. Our own entry is created after
		// the POST left, so only a larger clock skew with Salesforce
		// makes it look foreign — and that stops the run (audited), it
		// never adopts or deletes anything.
		skew = stagedBlindSkew
	}
	return sc.Created.IsZero() || !sc.Created.Before(started.Add(-skew))
}

// stagedClockSkew is how far Salesforce's createdDate may lag our clock.
const stagedClockSkew = 5 * time.Minute

// stagedBlindSkew is that allowance after a POST sent without reading the
// slot first.
const stagedBlindSkew = 30 * time.Second

// extraStageUnread (journal Extra): the rotation's first POST was sent
// without reading the slot first (postsFirst).
const extraStageUnread = "stage_unread"

// expose is protocol step 3 (I5). In toggle mode the prior value is saved
// in the journal before the setting is switched on, so every later exit —
// finish, failure, or Resume after a crash — can put it back. Once commit is
// done nothing needs the setting any more and the step is skipped.
func (e *Engine) expose(ctx context.Context, r *run) error {
	if r.done(StepCommit) {
		return nil
	}
	// Preflight already waited for an opening made before it.
	settled := r.settlesInPreflight()
	if err := e.openSecretAccess(ctx, r); err != nil {
		return err
	}
	if !settled {
		if _, err := e.settleSecretAccess(ctx, r); err != nil {
			return err
		}
	}
	// Not journaled on its own: the prior value is in the ledger (and in
	// the journal when this call opened the setting), and the next write —
	// before the POST — carries the rest. A crash before it resumes here.
	r.advance(StepExpose, true)
	if err := e.stepDone(ctx, r, StepExpose); err != nil {
		return err
	}
	if r.staged == nil && !r.postsFirst() {
		if err := e.inspectStaged(ctx, r); err != nil {
			return err
		}
	}
	return e.adoptIfNeeded(ctx, r)
}

// openSecretAccess joins the Dev Hub's shared opening (toggle mode), saves its
// prior value in the journal, and switches the setting on if it is off.
// The order is what I5 needs: the ledger and the journal both hold the
// prior value before the setting changes, so a crash at any point leaves a
// record that Resume (or the last holder out) restores from.
func (e *Engine) openSecretAccess(ctx context.Context, r *run) error {
	if r.app.SecretAccessMode != SecretAccessToggle {
		return nil
	}
	if r.accessHeld && r.accessKnown && r.accessOn {
		return nil // this call joined and opened already (openEarly)
	}
	prior, err := e.joinSecretAccess(ctx, r)
	if err != nil {
		return err
	}
	// The prior value is journaled before the setting changes (I5): by
	// the open's own journal write below when this call opens it, and
	// otherwise by expose's next write (the ledger holds it meanwhile).
	r.j.PriorSecretAccess = &prior
	on, err := r.secretAccess(ctx)
	if err != nil {
		return fmt.Errorf("read secret access setting: %w", err)
	}
	if on && r.j.Extra[ExtraOp] == "open_secret_access" {
		// A crashed attempt opened the setting and died before its event
		// was recorded: record it now, so the trail shows the opening
		// that the coming restore closes (I4).
		r.setExtra(ExtraOp, "")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		return e.record(ctx, r, EventSecretAccessOpened, StepExpose, OutcomeOK, nil, map[string]string{"recovered": "true"})
	}
	if on {
		return nil
	}
	r.accessKnown = false
	if err := e.mutate(ctx, r, "open_secret_access", func() error { return r.iss.SetSecretAccess(ctx, true) }); err != nil {
		return fmt.Errorf("open secret access: %w", err)
	}
	r.accessKnown, r.accessOn, r.openedAt = true, true, e.now()
	// The op is cleared by the next journal write: a crash before it only
	// makes the resumed run audit this opening once more as recovered.
	r.setExtra(ExtraOp, "")
	r.log.Info("secret access opened")
	return e.record(ctx, r, EventSecretAccessOpened, StepExpose, OutcomeOK, nil, nil)
}

// restoreSecretAccess leaves the Dev Hub's shared opening (toggle mode): when r
// was the last holder the setting goes back to its prior value. Then the
// journal forgets the prior value. Running it twice (after a crash) changes
// nothing: leaving re-reads the holders and the setting.
func (e *Engine) restoreSecretAccess(ctx context.Context, r *run) error {
	left, err := e.leaveOpening(ctx, r)
	if err != nil || !left || r.jv == 0 {
		return err
	}
	return e.save(ctx, r)
}

// leaveOpening leaves the Dev Hub's shared opening (toggle mode) when this
// call holds it or its journal says an earlier attempt did, and forgets
// the prior value in memory; it does not write the journal. finish uses it
// as is: the journal is removed right after.
func (e *Engine) leaveOpening(ctx context.Context, r *run) (bool, error) {
	if r.app.SecretAccessMode != SecretAccessToggle || (r.j.PriorSecretAccess == nil && !r.accessHeld) {
		return false, nil
	}
	if err := e.leaveSecretAccess(ctx, r); err != nil {
		return false, err
	}
	r.j.PriorSecretAccess = nil
	r.setExtra(ExtraOp, "")
	return true, nil
}

// adoptIfNeeded takes over a path without the managed-by marker or without
// current credentials: Salesforce's current primary pair becomes the path's
// managed version, and the rotation continues from there.
func (e *Engine) adoptIfNeeded(ctx context.Context, r *run) error {
	if r.meta.Managed && !r.stored.Current.IsZero() {
		return nil
	}
	creds, err := r.iss.Credentials(ctx, r.appRef.ID, r.consumer.ID)
	if err != nil {
		return fmt.Errorf("adopt: read current credentials: %w", err)
	}
	if creds.Key != r.primary {
		return fmt.Errorf("adopt: primary key changed from %s to %s: %w", r.primary, creds.Key, ErrConflict)
	}
	sc := StoredCredentials{Current: creds, TokenURL: r.app.TokenURL, RotationID: r.j.RotationID}
	var v int
	err = e.mutate(ctx, r, "adopt", func() error {
		var werr error
		v, werr = e.o.Store.WriteCredentials(ctx, r.app.VaultPath, sc, WriteOptions{CAS: r.meta.Version, RotationID: r.j.RotationID, Adopt: true, Lease: &r.lease})
		return werr
	})
	if err != nil {
		return fmt.Errorf("adopt: write %s: %w", r.app.VaultPath, err)
	}
	r.stored, r.meta.Version, r.meta.Managed = sc, v, true
	r.j.BaseVersion = v
	r.setExtra(ExtraOp, "")
	if err := e.save(ctx, r); err != nil {
		return err
	}
	r.log.Info("path adopted", zap.Int("version", v))
	ev := r.event(EventAppAdopted, StepPreflight, OutcomeOK, nil, nil)
	ev.ConsumerKey, ev.Fingerprint = creds.Key, e.o.Audit.Fingerprint(creds.Secret)
	return e.emit(ctx, r, ev)
}

// stage is protocol steps 4 and 5 (stage, persist). A fresh rotation
// POSTs at once (postsFirst); a refused POST, a resumed one and an
// ambiguous one read the slot: an Active entry of ours with its secret is
// adopted into the journal; one whose secret Salesforce no longer returns
// is useless (the secret is lost) and is deleted and staged again; an
// Active entry not ours stops the rotation (audited); a Rotated or Expired
// leftover is deleted because the slot holds one entry. An ambiguous POST
// is followed by a re-read, never by a blind second POST.
func (e *Engine) stage(ctx context.Context, r *run) error {
	if !r.j.Pending.IsZero() {
		return nil
	}
	const maxRounds = 4
	posts := 0
	first := r.staged == nil && r.postsFirst()
	var refused error     // a POST refusal whose slot is being read
	freshRefused := false // the refused POST was a fresh rotation's first
	for round := 0; round < maxRounds; round++ {
		if r.staged == nil && !first {
			list, err := r.iss.Staged(ctx, r.appRef.ID, r.consumer.ID)
			if err != nil {
				if refused != nil {
					return errors.Join(fmt.Errorf("stage: %w", refused), fmt.Errorf("read staged slot: %w", err))
				}
				return fmt.Errorf("read staged slot: %w", err)
			}
			r.staged = list
			if refused != nil && len(list) == 0 {
				// Nothing in the slot explains the refusal: it stands.
				return fmt.Errorf("stage: %w", refused)
			}
			refused = nil
		}
		if sc, ok := activeEntry(r.staged); ok {
			if !r.ours(sc) {
				ferr := e.foreignStaged(ctx, r, sc, StepStage)
				if freshRefused && !isAbort(ferr) {
					// Nothing was changed but the (journaled) opening: end
					// like a preflight stop, with no journal left behind.
					if cerr := e.forgetFresh(ctx, r); cerr != nil {
						return errors.Join(ferr, cerr)
					}
				}
				return ferr
			}
			if !sc.Secret.IsZero() {
				r.log.Info("adopting staged credential from the slot", zap.String("staged_id", sc.ID), zap.String(LogKeyKey, sc.Key))
				return e.persist(ctx, r, sc)
			}
			// Ours but shown without its secret: the setting may not have
			// applied yet. Wait (bounded); never POST a second time.
			return e.settleStaged(ctx, r, sc.ID)
		}
		if len(r.staged) > 0 {
			sc := r.staged[0]
			if sc.Status == StagedRotated { // L4: a trace before the delete
				if err := e.record(ctx, r, EventRetireStarted, StepStage, OutcomeOK, nil, map[string]string{"previous_key": sc.Key, "why": "staged slot needed for the new credential"}); err != nil {
					return err
				}
			}
			if err := e.deleteStaged(ctx, r, sc.ID); err != nil {
				return err
			}
			if sc.Status == StagedRotated {
				if err := e.record(ctx, r, EventPreviousRetired, StepStage, OutcomeOK, nil, map[string]string{"previous_key": sc.Key, "why": "staged slot needed for the new credential"}); err != nil {
					return err
				}
			}
			continue
		}
		if posts == 2 {
			break
		}
		if posts > 0 {
			// The re-read shows an empty slot: the earlier POST did not
			// apply (or its useless entry was deleted), so one more is safe.
			r.log.Warn("posting staged credential again after re-read")
		}
		posts++
		r.advance(StepStage, false)
		startedHere := r.j.Extra[ExtraStageStartedAt] == ""
		if startedHere {
			r.setExtra(ExtraStageStartedAt, e.now().UTC().Format(time.RFC3339Nano))
			if first {
				r.setExtra(extraStageUnread, "true")
			}
		}
		var sc StagedCredential
		sent := false
		err := e.mutate(ctx, r, "stage", func() error {
			var serr error
			sent = true
			sc, serr = r.iss.Stage(ctx, r.appRef.ID, r.consumer.ID)
			return serr
		})
		fresh := first // this POST was sent without reading the slot first
		first = false
		if sent && sc.ID == "" && refusedPost(err) {
			// Refused: nothing was created. Unmark the POST, so that no
			// entry in the slot passes for this rotation's (ours), then
			// read the slot to see why.
			if startedHere {
				r.setExtra(ExtraStageStartedAt, "")
				r.setExtra(extraStageUnread, "")
			}
			r.setExtra(ExtraOp, "")
			if serr := e.save(ctx, r); serr != nil {
				return errors.Join(fmt.Errorf("stage: %w", err), serr)
			}
			if !fresh && !errors.Is(err, ErrSlotOccupied) {
				return fmt.Errorf("stage: %w", err)
			}
			r.log.Info("staged POST refused; reading the slot", zap.Error(err))
			refused, freshRefused, r.staged = err, fresh, nil
			posts-- // it created nothing
			continue
		}
		if err == nil && !sc.Secret.IsZero() {
			return e.persist(ctx, r, sc)
		}
		if sc.ID != "" && sc.Secret.IsZero() && (err == nil || errors.Is(err, ErrAmbiguous)) {
			// Created, but answered without its secret (a secret-access
			// setting that has not applied yet): wait for the secret on
			// GET, bounded; if it never comes, delete the entry and fail.
			// A second POST would meet the same late setting.
			r.log.Warn("staged POST returned no secret; waiting for the setting to apply", zap.String("staged_id", sc.ID))
			return e.settleStaged(ctx, r, sc.ID)
		}
		if !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrSlotOccupied) {
			return fmt.Errorf("stage: %w", err)
		}
		r.log.Warn("staged POST outcome unknown; re-reading the slot", zap.Error(err))
		r.staged = nil
	}
	return fmt.Errorf("stage: no usable staged credential after re-reads: %w", ErrAmbiguous)
}

// forgetFresh ends a fresh rotation whose only change was the opening of
// the setting: the opening is left (restored when this run was the last
// holder) and the journal removed, so the stop counts like one found in
// preflight (no attempt, no backoff, no orphaning). A crash in between
// leaves a journal at stage with no POST in flight, which the next run
// reads first and stops on again.
func (e *Engine) forgetFresh(ctx context.Context, r *run) error {
	if err := e.restoreSecretAccess(ctx, r); err != nil {
		return err
	}
	if err := e.o.Journal.Clear(ctx, r.app.Name, &r.lease); err != nil {
		return fmt.Errorf("clear journal: %w", err)
	}
	r.jv = 0
	return nil
}

func activeEntry(list []StagedCredential) (StagedCredential, bool) {
	for _, sc := range list {
		if sc.Status == StagedActive {
			return sc, true
		}
	}
	return StagedCredential{}, false
}

// deleteStaged deletes one staged entry (already gone is fine) and forces a
// re-read of the slot.
func (e *Engine) deleteStaged(ctx context.Context, r *run, id string) error {
	err := e.mutate(ctx, r, "delete_staged", func() error { return r.iss.DeleteStaged(ctx, r.appRef.ID, r.consumer.ID, id) })
	r.staged = nil
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrAmbiguous) {
		return fmt.Errorf("delete staged %s: %w", id, err)
	}
	r.setExtra(ExtraOp, "")
	return e.save(ctx, r)
}

// persist saves the staged pair in the journal (Vault) before anything else
// is sent to Salesforce (I2).
func (e *Engine) persist(ctx context.Context, r *run, sc StagedCredential) error {
	r.j.StagedID = sc.ID
	r.j.Pending = Credentials{Key: sc.Key, Secret: sc.Secret}
	r.setExtra(ExtraOp, "")
	r.advance(StepPersist, true)
	if err := e.save(ctx, r); err != nil {
		return err
	}
	r.res.ConsumerKey = sc.Key
	r.stagedHere = sc.ID
	r.staged = nil // the slot changed with the POST
	r.log = r.log.With(zap.String("new_key", sc.Key))
	if err := e.stepDone(ctx, r, StepStage); err != nil {
		return err
	}
	return e.stepDone(ctx, r, StepPersist)
}

// rotate is protocol step 5: promote the staged pair. It reads the primary
// key first — equal to the pending key means an earlier PATCH applied — and
// otherwise promotes the staged entry only while it is still Active.
func (e *Engine) rotate(ctx context.Context, r *run) error {
	if r.done(StepRotate) {
		return nil
	}
	if id := r.stagedHere; id != "" && id == r.j.StagedID {
		// This call staged the entry moments ago under its lease: it is
		// Active and not promoted, so promote it without reading the
		// primary key and the slot first. An unknown outcome or a vanished
		// entry falls back to the re-reading path below.
		r.stagedHere = ""
		r.advance(StepRotate, false)
		err := e.promote(ctx, r, id)
		if err == nil {
			// Kept set: verify knows this call's own PATCH promoted the
			// pair this call staged (promotedHere).
			r.stagedHere = id
			return e.rotated(ctx, r)
		}
		if !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("promote: %w", err)
		}
		r.log.Warn("promote of the entry just staged did not settle; re-reading", zap.Error(err))
	}
	r.stagedHere = ""
	for try := 0; try < 2; try++ {
		primary, err := r.iss.PrimaryKey(ctx, r.appRef.ID, r.consumer.ID)
		if err != nil {
			return fmt.Errorf("read primary key: %w", err)
		}
		if primary == r.j.Pending.Key {
			return e.rotated(ctx, r)
		}
		list, err := r.iss.Staged(ctx, r.appRef.ID, r.consumer.ID)
		if err != nil {
			return fmt.Errorf("read staged slot: %w", err)
		}
		var found *StagedCredential
		for i := range list {
			if list[i].Status == StagedActive && (list[i].ID == r.j.StagedID || list[i].Key == r.j.Pending.Key) {
				found = &list[i]
			}
		}
		if found == nil {
			// Deleted or expired before promotion: the pending pair is dead.
			// Start the next attempt from a fresh stage.
			lost := r.j.Pending.Key
			r.j.Pending, r.j.StagedID = Credentials{}, ""
			r.j.Step, r.j.Done = StepPreflight, true
			if err := e.save(ctx, r); err != nil {
				return err
			}
			return fmt.Errorf("staged key %s: %w", lost, ErrStagedLost)
		}
		r.j.StagedID = found.ID
		r.advance(StepRotate, false)
		err = e.promote(ctx, r, found.ID)
		if err == nil {
			return e.rotated(ctx, r)
		}
		if !errors.Is(err, ErrAmbiguous) {
			return fmt.Errorf("promote: %w", err)
		}
		r.log.Warn("promote outcome unknown; re-reading", zap.Error(err))
	}
	return fmt.Errorf("promote: %w", ErrAmbiguous)
}

// promote sends PATCH rotate for staged entry id. When the answer names
// the Rotated entry holding the old primary key, the slot's content is
// known (r.staged) and commit needs no GET staged for its id and
// expiration; otherwise r.staged stays nil and commit lists the slot.
func (e *Engine) promote(ctx context.Context, r *run, id string) error {
	var prev StagedCredential
	r.staged = nil
	err := e.mutate(ctx, r, "promote", func() error {
		var perr error
		prev, perr = r.iss.Promote(ctx, r.appRef.ID, r.consumer.ID, id)
		return perr
	})
	if err == nil && prev.ID != "" && prev.Status == StagedRotated && prev.Key != "" && prev.Key == r.j.Extra[ExtraOldKey] {
		prev.Secret = Secret{} // never needed, never kept
		r.staged = []StagedCredential{prev}
	}
	return err
}

// promotedHere reports whether this call's own PATCH (answered 200)
// promoted the entry this call staged: then Salesforce said the pair is
// primary, and verify proves it with token requests alone. Every resumed
// or ambiguous path reads the pair back.
func (r *run) promotedHere() bool {
	return r.stagedHere != "" && r.stagedHere == r.j.StagedID && r.done(StepRotate)
}

func (e *Engine) rotated(ctx context.Context, r *run) error {
	if r.j.Extra[ExtraRotatedAt] == "" {
		r.setExtra(ExtraRotatedAt, e.now().UTC().Format(time.RFC3339Nano))
	}
	r.setExtra(ExtraOp, "")
	r.advance(StepRotate, true)
	// Not journaled on its own: verify's write carries it. A crash before
	// that resumes at rotate, whose re-read finds the pending key primary.
	return e.stepDone(ctx, r, StepRotate)
}

// verify is protocol step 6: read the primary pair back and prove the new
// pair at every token URL, retrying (injected backoff and sleep) for the
// propagation delay up to VerifyTimeout per URL. Vault's app path is not
// touched here: on failure applications keep the previous pair, which
// Salesforce still accepts from its Rotated slot.
func (e *Engine) verify(ctx context.Context, r *run) error {
	if r.done(StepVerify) {
		return nil
	}
	if !r.promotedHere() {
		// A resumed or ambiguous promotion: read the primary pair back.
		got, err := r.iss.Credentials(ctx, r.appRef.ID, r.consumer.ID)
		if err != nil {
			return fmt.Errorf("read back credentials: %w", err)
		}
		if got.Key != r.j.Pending.Key || !got.Secret.Equal(r.j.Pending.Secret) {
			return fmt.Errorf("%w: read-back pair (key %s) differs from the staged pair (key %s)", ErrVerifyFailed, got.Key, r.j.Pending.Key)
		}
	}
	for _, u := range r.app.VerifyURLs {
		if err := e.verifyURL(ctx, r, u); err != nil {
			return err
		}
	}
	// Not journaled on its own: a crash after it resumes at rotate, finds
	// the pending key primary and proves it again — the token requests are
	// idempotent, and the app path is still untouched.
	r.advance(StepVerify, true)
	return e.stepDone(ctx, r, StepVerify)
}

func (e *Engine) verifyURL(ctx context.Context, r *run, u string) error {
	start := e.now()
	for attempt := 1; ; attempt++ {
		err := e.o.Verifier.Verify(ctx, u, r.j.Pending)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrRejected) && !errors.Is(err, ErrUnreachable) {
			return fmt.Errorf("verify at %s: %w", u, err)
		}
		retry, wait := e.o.Backoff(attempt)
		if !retry || e.now().Add(wait).Sub(start) > r.app.VerifyTimeout {
			return fmt.Errorf("%w at %s after %d tries: %w", ErrVerifyFailed, u, attempt, err)
		}
		r.log.Warn("new credentials not accepted yet; retrying", zap.String("token_url", u), zap.Int("try", attempt), zap.Duration("wait", wait), zap.Error(err))
		if err := e.sleep(ctx, r, wait); err != nil {
			return err
		}
	}
}

// sleep waits d in slices of at most a third of the lease, renewing the
// lease between slices, so a long propagation wait never lets it lapse.
func (e *Engine) sleep(ctx context.Context, r *run, d time.Duration) error {
	for d > 0 {
		slice := min(d, e.o.LockTTL/3)
		if err := e.renew(ctx, r); err != nil {
			return err
		}
		if err := e.o.Sleep(ctx, slice); err != nil {
			return err
		}
		d -= slice
	}
	return e.renew(ctx, r)
}

// commit is protocol step 7: the new pair becomes the version applications
// read, with the old pair as previous per the overlap policy. The write is
// check-and-set on the version read at preflight; a path rewritten since
// then is accepted only if it still holds the pair this rotation replaced.
// A write whose outcome is unknown is settled by re-reading the path.
func (e *Engine) commit(ctx context.Context, r *run) error {
	if r.done(StepCommit) {
		return nil
	}
	// The path as this call read it in preflight (under the lease, and
	// kept current by its own adopt write): the check-and-set write proves
	// it unchanged, so commit reads Vault again only when that write loses.
	stored, meta := r.stored, r.meta
	if !r.storeRead {
		var err error
		if stored, meta, err = e.readStore(ctx, r.app.VaultPath); err != nil {
			return err
		}
	}
	oldKey := r.j.Extra[ExtraOldKey]
	for try := 0; ; try++ {
		err := e.commitWrite(ctx, r, stored, &meta, oldKey)
		if err == nil {
			break
		}
		if try > 0 || !errors.Is(err, ErrConflict) {
			return err
		}
		var rerr error
		if stored, meta, rerr = e.readStore(ctx, r.app.VaultPath); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	r.meta = meta
	r.res.VaultVersion = meta.Version
	if r.app.Overlap.Policy == OverlapImmediate {
		slot, err := e.rotatedSlot(ctx, r, oldKey)
		if err != nil {
			return err
		}
		if slot.ID != "" {
			if err := e.deleteStaged(ctx, r, slot.ID); err != nil {
				return err
			}
			if err := e.record(ctx, r, EventPreviousRetired, StepCommit, OutcomeOK, nil, map[string]string{"previous_key": oldKey, "policy": string(OverlapImmediate)}); err != nil {
				return err
			}
		}
	}
	r.setExtra(ExtraOp, "")
	r.advance(StepCommit, true)
	// Not journaled on its own: finish's writes carry it. A crash before
	// them resumes at commit, which finds this rotation's pair in Vault.
	return e.stepDone(ctx, r, StepCommit)
}

// commitWrite writes the pending pair over stored (version meta.Version)
// unless stored already holds it, and leaves the written version in meta.
// ErrConflict means the path moved since stored was read.
func (e *Engine) commitWrite(ctx context.Context, r *run, stored StoredCredentials, meta *StoreMeta, oldKey string) error {
	if !(stored.Current.Key == r.j.Pending.Key && stored.RotationID == r.j.RotationID) {
		if meta.Version != r.j.BaseVersion && !(meta.Managed && stored.Current.Key == oldKey) {
			return fmt.Errorf("vault path %s moved from version %d to %d: %w", r.app.VaultPath, r.j.BaseVersion, meta.Version, ErrConflict)
		}
		rotatedAt := e.rotatedAt(r)
		slot, err := e.rotatedSlot(ctx, r, oldKey)
		if err != nil {
			return err
		}
		sc := StoredCredentials{Current: r.j.Pending, TokenURL: r.app.TokenURL, RotatedAt: rotatedAt, RotationID: r.j.RotationID}
		if r.app.Overlap.Policy != OverlapImmediate && stored.Current.Key == oldKey {
			sc.Previous = stored.Current
			sc.PreviousValidUntil = PreviousValidUntil(r.app.Overlap, rotatedAt, slot.Expires)
			sc.PreviousStagedID = slot.ID
		}
		r.advance(StepCommit, false)
		v, err := e.writePending(ctx, r, sc, meta.Version)
		if err != nil {
			return err
		}
		meta.Version = v
		r.noteStored(sc)
		return nil
	}
	r.noteStored(stored)
	return nil
}

func (e *Engine) rotatedAt(r *run) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, r.j.Extra[ExtraRotatedAt]); err == nil {
		return t
	}
	return e.now()
}

// rotatedSlot finds the Rotated entry holding key (zero when absent). The
// slot as this call last learned it (r.staged: a read, or the Rotated
// entry a PATCH rotate answered with) is used when it holds that entry;
// otherwise the slot is listed.
func (e *Engine) rotatedSlot(ctx context.Context, r *run, key string) (StagedCredential, error) {
	for _, sc := range r.staged {
		if sc.Status == StagedRotated && sc.Key == key && sc.ID != "" {
			return sc, nil
		}
	}
	list, err := r.iss.Staged(ctx, r.appRef.ID, r.consumer.ID)
	if err != nil {
		return StagedCredential{}, fmt.Errorf("read staged slot: %w", err)
	}
	for _, sc := range list {
		if sc.Status == StagedRotated && sc.Key == key {
			return sc, nil
		}
	}
	return StagedCredential{}, nil
}

// finish is protocol step 8: restore the secret-access setting, record the
// success, clear the journal, release the lease. The success event comes
// before the journal is cleared so that a failed Record leaves the journal
// (and a resume) rather than an unaudited success.
func (e *Engine) finish(ctx context.Context, r *run) error {
	r.advance(StepFinish, false)
	// The journal is removed below, so leaving the opening is not
	// journaled: a crash in between resumes, finds the pair committed, and
	// leaves again (a no-op once the ledger no longer names this app).
	if _, err := e.leaveOpening(ctx, r); err != nil {
		return err
	}
	r.res.RotationID, r.res.ConsumerKey, r.res.PreviousKey = r.j.RotationID, r.j.Pending.Key, r.j.Extra[ExtraOldKey]
	r.res.Fingerprint = e.o.Audit.Fingerprint(r.j.Pending.Secret)
	r.res.Attempts = r.j.Attempts
	if r.res.VaultVersion == 0 { // commit happened in an earlier (crashed) call
		r.res.VaultVersion = r.meta.Version
	}
	if err := e.record(ctx, r, EventRotationSucceeded, StepFinish, OutcomeOK, nil, map[string]string{"previous_key": r.j.Extra[ExtraOldKey], "policy": string(r.app.Overlap.Policy)}); err != nil {
		return err
	}
	if err := e.hook("before:clear_journal"); err != nil {
		return err
	}
	if err := e.clearJournal(ctx, r); err != nil {
		return fmt.Errorf("clear journal: %w", err)
	}
	r.jv = 0
	r.res.Step = StepFinish
	r.log.Info("rotation succeeded", zap.Int("vault_version", r.res.VaultVersion))
	e.release(ctx, r)
	return nil
}

// event builds an event with the run's common fields.
func (r *run) event(t EventType, step Step, outcome Outcome, cause error, details map[string]string) Event {
	ev := Event{
		Type: t, App: r.app.Name, Org: r.app.DevHub, ECA: r.app.ECA,
		ConsumerKey: r.consumerKey(), RotationID: r.j.RotationID, Step: step, Actor: r.actor,
		Outcome: outcome, VaultPath: r.app.VaultPath, VaultVersion: r.meta.Version, Details: details,
	}
	if cause != nil {
		ev.Error = cause.Error()
	}
	return ev
}

// writePending commits sc (the journal's pending pair) to the app's path
// with check-and-set on version, for both strategies. A write whose answer
// was lost is reconciled by reading the path back: if it holds this
// rotation's pair, the write happened and its version is returned.
func (e *Engine) writePending(ctx context.Context, r *run, sc StoredCredentials, version int) (int, error) {
	var v int
	err := e.mutate(ctx, r, "write_credentials", func() error {
		var werr error
		// The path was read at this version under the lease (preflight,
		// or this call's own adopt write): one check-and-set write.
		managed := r.meta.Managed && r.meta.Version == version
		v, werr = e.o.Store.WriteCredentials(ctx, r.app.VaultPath, sc, WriteOptions{CAS: version, RotationID: r.j.RotationID, Lease: &r.lease, Managed: managed})
		return werr
	})
	if err == nil {
		return v, nil
	}
	if errors.Is(err, ErrFenced) || isAbort(err) {
		return 0, err
	}
	again, m2, rerr := e.readStore(ctx, r.app.VaultPath)
	if rerr != nil || again.Current.Key != r.j.Pending.Key || again.RotationID != r.j.RotationID {
		return 0, fmt.Errorf("write %s: %w", r.app.VaultPath, err)
	}
	return m2.Version, nil
}
