package rotator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Stable zap field keys (style.md §13).
const (
	LogKeyApp        = "app"
	LogKeyOrg        = "org"
	LogKeyECA        = "eca"
	LogKeyRotationID = "rotation_id"
	LogKeyStep       = "step"
	LogKeyErr        = "err"
	LogKeyKey        = "consumer_key"
	LogKeyReason     = "reason"
)

// JournalEntry.Extra keys the engine writes. They hold public facts only
// (consumer keys are public ids); `status` and `plan` may show them.
const (
	ExtraOp             = "op"               // the external mutation in flight (set before the call)
	ExtraOldKey         = "old_key"          // Salesforce's primary key when the rotation started
	ExtraRotatedAt      = "rotated_at"       // when Promote took effect (RFC 3339)
	ExtraFailedStep     = "failed_step"      // step of the last failure
	ExtraOrphanReason   = "orphan_reason"    // why the app was orphaned
	ExtraRevoke         = "revoke"           // retire journal: operator revoke
	ExtraStageStartedAt = "stage_started_at" // when the first POST of this rotation was sent (RFC 3339)
)

// Options are the engine's dependencies. Every one is required except Hook,
// Sleep and NewID, which have defaults.
type Options struct {
	// Issuers maps a Dev Hub name (App.DevHub) to its Issuer.
	Issuers  map[string]Issuer
	Verifier Verifier
	Store    CredentialStore
	Journal  Journal
	Locker   Locker
	Audit    AuditLog
	Clock    Clock
	Logger   *zap.Logger
	// Backoff paces both the verify retries (propagation delay) and the
	// attempts after a failed cycle (NextAttemptAt). attempt is 1-based.
	Backoff func(attempt int) (retry bool, wait time.Duration)
	// Holder identifies this replica in leases.
	Holder string
	// LockTTL is the lease lifetime; the engine renews when half is used.
	LockTTL time.Duration
	// OrphanAfter is the number of failed attempts after which the app is
	// orphaned and left for an operator.
	OrphanAfter int
	// Hook, when set, is called at every step boundary and around every
	// external mutation. Points: "after:lock"; "step:<step>" after each
	// step completed; "before:<op>" (after the journal save, before the
	// call) and "after:<op>" (after the call, before its outcome is
	// journaled — "after:stage" is the gap between the POST response and
	// the Vault write) for op in open_secret_access, close_secret_access, adopt,
	// stage, delete_staged, promote, write_credentials; "before:clear_journal";
	// "before:retire_write", "after:retire_write". A non-nil error makes the
	// engine return it at once, skipping all cleanup: tests use it to
	// simulate a crash at that point. Production leaves it nil.
	Hook func(point string) error
	// Sleep waits between verify retries; default a timer honouring ctx.
	// Tests pass one that advances their fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// NewID returns a fresh rotation id; default 16 random bytes in hex.
	NewID func() string
	// Ledger counts the rotations of each Dev Hub that rely on its
	// secret-access setting being open (toggle mode); default a
	// JournalLedger on Journal.
	Ledger SecretAccessLedger
	// SettleWait bounds the wait for a secret-access setting that
	// applies late (Salesforce answers 200 without the secret meanwhile);
	// default 60s of accumulated waits.
	SettleWait time.Duration
	// SettleSleep waits between those polls; default a wall-clock timer,
	// because the delay is Salesforce's, not ours.
	SettleSleep func(ctx context.Context, d time.Duration) error
}

func (o *Options) validate() error {
	var errs []error
	if len(o.Issuers) == 0 {
		errs = append(errs, errors.New("issuers: at least one is required"))
	}
	for name, iss := range o.Issuers {
		if iss == nil {
			errs = append(errs, fmt.Errorf("issuers[%s]: nil", name))
		}
	}
	for name, nilDep := range map[string]bool{
		"verifier": o.Verifier == nil, "store": o.Store == nil, "journal": o.Journal == nil,
		"locker": o.Locker == nil, "audit": o.Audit == nil, "clock": o.Clock == nil,
		"logger": o.Logger == nil, "backoff": o.Backoff == nil,
	} {
		if nilDep {
			errs = append(errs, fmt.Errorf("%s: required", name))
		}
	}
	if o.Holder == "" {
		errs = append(errs, errors.New("holder: required"))
	}
	if o.LockTTL <= 0 {
		errs = append(errs, errors.New("lock ttl: must be positive"))
	}
	if o.OrphanAfter <= 0 {
		errs = append(errs, errors.New("orphan after: must be positive"))
	}
	if o.Sleep == nil {
		o.Sleep = sleepTimer
	}
	if o.NewID == nil {
		o.NewID = randomID
	}
	if o.SettleWait <= 0 {
		o.SettleWait = DefaultSettleWait
	}
	if o.SettleSleep == nil {
		o.SettleSleep = sleepTimer
	}
	if o.Ledger == nil && o.Journal != nil {
		o.Ledger = JournalLedger{Journal: o.Journal}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rotator: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Engine runs rotations. It keeps no state a rotation depends on between
// calls: every call starts from the journal, Salesforce and Vault, which is
// what makes a fresh Engine able to resume after a crash. (It remembers
// what only saves requests — the Dev Hubs' ledger states and the apps' ECA
// cache entries it last saw, how long each Dev Hub's setting takes to
// apply — and each of those is proven or corrected by the next
// check-and-set write or Salesforce answer.)
//
// The journal (JournalEntry.Step/Done) only moves forward; Extra["op"] names
// the external mutation in flight. It is written only where a resume needs
// it (issue 14): before the setting is opened (the prior value, I5), before
// the first POST staged (so an entry created by a POST whose answer was lost
// is recognised), after the POST (the pending pair, I2), and when an attempt
// fails; the end of a run deletes it together with the lease. A crashed or
// failed rotation resumes as follows (every row re-reads Salesforce/Vault
// before acting):
//
//	journal says                      resume does
//	none                              fresh rotation (nothing was changed)
//	PriorSecretAccess set             join the Dev Hub's shared opening again; re-read the
//	                                  setting, open if closed; leave it at the end (the
//	                                  last holder out restores the prior value)
//	stage started, no Pending         GET staged: Active (created after our POST) with
//	                                  secret → adopt into journal;
//	                                  Active without secret → DELETE, POST again;
//	                                  empty → POST; a refused first POST (slot
//	                                  occupied) reads the slot and decides from it
//	persist done (Pending saved)      rotate: PrimaryKey == Pending.Key → done; staged
//	                                  entry still Active → PATCH; gone → ErrStagedLost,
//	                                  journal rewound to stage a fresh pair (a crash
//	                                  during PATCH, verify or the Vault commit lands here)
//	verify failed                     verify again (read-back + token requests);
//	                                  Vault's app path untouched until it passes
//	app path holds our rotation id    the commit happened: straight to finish — leave the
//	                                  opening, audit success, delete the journal
//	step "retire"                     finish the retire (Retire's own journal)
//	Orphaned / NextAttemptAt future   only restore secret access; ErrOrphaned / ErrBackoff
//
// Toggle-mode rotations of one Dev Hub share one opening of its secret-access
// setting (secretaccess.go): the first in records the prior value and opens it,
// others join, the last one out restores it. Holders whose app lease is gone
// are dropped, so a crashed rotation cannot keep the setting open for ever.
type Engine struct {
	o      Options
	ledger SecretAccessLedger
	strat  strategyMemo // mirror of the Vault ECA caches' distribution (metadata_strategy.go)
	settle settleHints  // how long each Dev Hub's setting took to apply
	// ledgerMemo: the Dev Hubs' ledger states this engine last saw. A
	// join or leave writes against it first (check-and-set) and reads the
	// ledger only when that write loses: the write proves it current.
	ledgerMemo memo[SecretAccessState]
	// ecaMemo: the apps' ECA cache entries this engine last saw. It is a
	// cache of a cache: an entry another replica changed shows as a
	// mismatch (the ids answer not found and are looked up again) or as a
	// lost check-and-set on the next save, which forgets it (gate.go).
	ecaMemo memo[JournalEntry]
}

// NewEngine checks o and returns an Engine.
func NewEngine(o Options) (*Engine, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Engine{o: o, ledger: o.Ledger,
		ledgerMemo: memo[SecretAccessState]{clone: SecretAccessState.clone},
		ecaMemo:    memo[JournalEntry]{clone: cloneEntry}}, nil
}

// Request is one call to Rotate.
type Request struct {
	Actor  Actor
	Reason string // copied into Actor.Reason when set
	// DryRun returns the Plan without taking the lock or changing anything.
	DryRun bool
	// Adopt allows taking over a path without the managed-by marker (or
	// without current credentials) for this run, like App.Adopt.
	Adopt bool
	// Run, when set, is the scheduled run this call serves. The engine
	// then decides "does this run still rotate?" itself, under the app's
	// lease, from its one journal load and one KV read
	// (ScheduledRunChain): a slot another replica already served ends the
	// call with OutcomeSkipped and Result.Decision saying why, with no
	// separate slot lease and no read by the caller.
	Run *ScheduledRun
}

// ScheduledRun is what the scheduler knows about a run.
type ScheduledRun struct {
	// Reason is why the scheduler started the run (ReasonSlot,
	// ReasonCatchUp, ReasonMaxAge, ReasonRetry).
	Reason Reason
	// Slot is the cron slot the run serves (zero for max age or a retry
	// that serves none).
	Slot time.Time
}

// Result describes what a call did. It never holds a secret.
type Result struct {
	App           string
	RotationID    string
	Outcome       Outcome
	Step          Step // the last step completed, or the step that failed
	Resumed       bool // an existing journal was picked up
	ConsumerKey   string
	PreviousKey   string
	VaultVersion  int
	Fingerprint   string
	Attempts      int
	NextAttemptAt time.Time
	Orphaned      bool
	Plan          *PlanResult // DryRun only
	// Strategy is how the app was rotated (staged or metadata).
	Strategy Strategy
	// Downtime is, for the metadata strategy, the time from the deploy
	// being done (the old secret stops working) to the Vault commit.
	Downtime time.Duration
	// Decision is, for a scheduled run (Request.Run), what the engine
	// decided under the lease; nil when the run met a journal.
	Decision *Decision
	// RotatedAt, PreviousValidUntil and HasPrevious describe the KV path
	// as the call left it (or found it, for a skipped run), so the caller
	// plans the next run and the retirement without reading Vault again.
	RotatedAt          time.Time
	PreviousValidUntil time.Time
	HasPrevious        bool
}

// abortError is a Hook failure: the engine returns it untouched, running no
// cleanup, exactly like a process that died at that point.
type abortError struct {
	point string
	err   error
}

func (a *abortError) Error() string { return "aborted at " + a.point + ": " + a.err.Error() }
func (a *abortError) Unwrap() error { return a.err }

// stepOrder ranks the protocol's steps so the journal's progress only moves
// forward.
var stepOrder = map[Step]int{
	StepLock: 0, StepPreflight: 1, StepExpose: 2, StepStage: 3, StepPersist: 4,
	StepRotate: 5, StepVerify: 6, StepCommit: 7, StepFinish: 8,
}

// run is the state of one call. It lives only for the call; everything
// that must survive a crash is in j and saved through the Journal.
type run struct {
	app   App
	iss   Issuer
	actor Actor
	adopt bool
	lease Lease // the app lease, passed to fenced writes
	// leaseUntil is when the app lease ends on the engine's clock: the
	// clock reading taken before the lease was acquired or last renewed,
	// plus LockTTL. The Lease's ExpiresAt is on the locker's clock, which
	// the engine's Clock need not share (a test's fake clock, skew).
	leaseUntil time.Time
	appLease   held
	accessHeld bool // a holder of the Dev Hub's shared opening (toggle mode)
	// accessOn: this call saw the secret-access setting on (it read it, or
	// switched it on itself), so later steps of the call need not read it
	// again. openedAt is when this call switched it on (zero otherwise).
	accessKnown, accessOn bool
	openedAt              time.Time
	// sleptSinceRenew is wall-clock settle sleep since the lease was last
	// renewed: the engine's clock (a test's fake) does not see it.
	sleptSinceRenew time.Duration
	// stagedHere is the staged entry this call created and (after a 200 from
	// PATCH) promoted: verify then needs no read-back.
	stagedHere string
	// readsGated: this call had to open the setting before it could read.
	readsGated bool
	j          JournalEntry
	jv         int // journal version; 0 while no journal exists
	resumed    bool

	appRef    AppRef
	cache     ecaCache // the app's cached ECA identifiers
	consumer  Consumer
	primary   string
	stored    StoredCredentials
	meta      StoreMeta
	storeRead bool // stored and meta were read in this call, under the lease
	sched     *ScheduledRun
	staged    []StagedCredential
	res       Result
	log       *zap.Logger

	strategy StrategyChoice // metadata_strategy.go
	md       mdRun          // metadata_steps.go
}

// held is a lease the call owns.
type held struct {
	l  Lease
	ok bool
}

// done reports whether the journal's progress has reached step completed.
func (r *run) done(s Step) bool {
	return stepOrder[r.j.Step] > stepOrder[s] || (r.j.Step == s && r.j.Done)
}

// advance moves the journal's progress forward (never backward).
func (r *run) advance(s Step, done bool) {
	if stepOrder[s] > stepOrder[r.j.Step] || (s == r.j.Step && done) {
		r.j.Step, r.j.Done = s, done
	}
}

func (r *run) setExtra(k, v string) {
	if r.j.Extra == nil {
		r.j.Extra = map[string]string{}
	}
	if v == "" {
		delete(r.j.Extra, k)
		return
	}
	r.j.Extra[k] = v
}

func (e *Engine) now() time.Time { return e.o.Clock.Now() }

func (e *Engine) hook(point string) error {
	if e.o.Hook == nil {
		return nil
	}
	if err := e.o.Hook(point); err != nil {
		return &abortError{point: point, err: err}
	}
	return nil
}

func (e *Engine) newRun(app App, actor Actor, adopt bool) (*run, error) {
	if err := app.Validate(); err != nil {
		return nil, err
	}
	iss, ok := e.o.Issuers[app.DevHub]
	if !ok {
		return nil, fmt.Errorf("rotator: app %s: no issuer for dev hub %q", app.Name, app.DevHub)
	}
	if actor.Kind == "" {
		actor.Kind = ActorSystem
	}
	r := &run{app: app, iss: iss, actor: actor, adopt: adopt || app.Adopt}
	r.iss = e.fence(iss, r) // L1: mutations end with the lease
	r.res.App = app.Name
	r.log = e.o.Logger.With(zap.String(LogKeyApp, app.Name), zap.String(LogKeyOrg, app.DevHub), zap.String(LogKeyECA, app.ECA))
	return r, nil
}

// lock takes the app's lease (protocol step 1).
func (e *Engine) lock(ctx context.Context, r *run) error {
	start := e.now()
	l, err := e.o.Locker.Acquire(ctx, "app/"+r.app.Name, e.o.Holder, e.o.LockTTL)
	if err != nil {
		return fmt.Errorf("lock %s: %w", r.app.Name, err)
	}
	r.lease, r.appLease = l, held{l: l, ok: true}
	r.leaseUntil = start.Add(e.o.LockTTL)
	return e.hook("after:lock")
}

// renew extends the lease once half of it is used. ErrFenced means another
// replica took the app over: the caller stops at once.
func (e *Engine) renew(ctx context.Context, r *run) error {
	h := &r.appLease
	if !h.ok || r.leaseUntil.Sub(e.now())-r.sleptSinceRenew > e.o.LockTTL/2 {
		return nil
	}
	start := e.now()
	l, err := e.o.Locker.Renew(ctx, h.l, e.o.LockTTL)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", h.l.Name, err)
	}
	h.l = l
	r.lease, r.leaseUntil = l, start.Add(e.o.LockTTL)
	r.sleptSinceRenew = 0
	return nil
}

// release gives back the app lease. A holder of the Dev Hub's opening
// that could not leave it is dropped by the next join or leave once this
// lease is gone.
func (e *Engine) release(ctx context.Context, r *run) {
	if !r.appLease.ok {
		return
	}
	if err := e.o.Locker.Release(ctx, r.appLease.l); err != nil {
		r.log.Warn("release lease", zap.Error(err))
	}
	r.appLease.ok = false
}

// loadJournal reads the app's journal; found=false when there is none.
func (e *Engine) loadJournal(ctx context.Context, r *run) (found bool, err error) {
	j, v, err := e.o.Journal.Load(ctx, r.app.Name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load journal: %w", err)
	}
	r.j, r.jv = j, v
	r.log = r.log.With(zap.String(LogKeyRotationID, j.RotationID))
	return true, nil
}

// save writes the journal with check-and-set under the lease.
func (e *Engine) save(ctx context.Context, r *run) error {
	r.j.UpdatedAt = e.now()
	v, err := e.o.Journal.Save(ctx, r.app.Name, r.j, r.jv, &r.lease)
	if err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	r.jv = v
	return nil
}

// mutate wraps one external mutation. For a mutation whose start a
// resumed run must know (unjournaledOps lists the others), the journal —
// with op recorded and any progress the caller set — is saved before the
// call, so a crash during the call leaves a journal that says what may
// have happened; the save is fenced by the lease, so it is also the lease
// check. The caller saves the outcome afterwards.
func (e *Engine) mutate(ctx context.Context, r *run, op string, fn func() error) error {
	r.setExtra(ExtraOp, op)
	if !unjournaledOps[op] {
		if err := e.save(ctx, r); err != nil {
			return err
		}
	} else if err := e.o.Locker.Check(ctx, r.lease); err != nil {
		// The lease check the save would have been (the Vault adapter
		// answers it from memory for a lease it holds).
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := e.hook("before:" + op); err != nil {
		return err
	}
	err := fn()
	if herr := e.hook("after:" + op); herr != nil {
		return herr
	}
	return err
}

// unjournaledOps are the mutations sent without a journal write before
// them (issue 14: journal writes only at the boundaries crash-safety
// needs). A resumed run settles each from Salesforce and Vault alone:
//
//   - promote: the journal says the pending pair is persisted; resume reads
//     the primary key (equal to the pending key: done) and the slot (still
//     Active: PATCH; gone: ErrStagedLost), never a blind second PATCH;
//   - write_credentials: commit re-reads the app path, and this rotation's
//     id there means the write happened;
//   - delete_staged: deleting is idempotent (404 is "already gone") and
//     every caller re-reads the slot afterwards;
//   - close_secret_access: the Dev Hub's ledger names this run as closer before
//     the call, which is what a resumed leave reads (secretaccess.go).
//
// Their Salesforce calls stay bounded by the lease (fencedIssuer) and
// their Vault writes are check-and-set under it.
var unjournaledOps = map[string]bool{"promote": true, "write_credentials": true, "delete_staged": true, "close_secret_access": true}

// endRun removes the run's journal, if it has one, and releases the lease
// (together when the Journal keeps both in one record).
func (e *Engine) endRun(ctx context.Context, r *run) error {
	if r.jv != 0 {
		if err := e.clearJournal(ctx, r); err != nil {
			return fmt.Errorf("clear journal: %w", err)
		}
		r.jv = 0
	}
	e.release(ctx, r)
	return nil
}

// clearJournal removes the app's journal at the end of a run and releases
// the lease with it when the Journal keeps both in one record (one request
// instead of two).
func (e *Engine) clearJournal(ctx context.Context, r *run) error {
	if lj, ok := e.o.Journal.(LeaseJournal); ok && r.appLease.ok && r.appLease.l.Name == "app/"+r.app.Name {
		if err := lj.ClearAndRelease(ctx, r.app.Name, r.appLease.l); err != nil {
			return err
		}
		r.appLease.ok = false
		return nil
	}
	return e.o.Journal.Clear(ctx, r.app.Name, &r.lease)
}

// record emits one audit event. A failure is returned wrapped in ErrAudit
// so the rotation stops at this step (fail closed).
func (e *Engine) record(ctx context.Context, r *run, t EventType, step Step, outcome Outcome, cause error, details map[string]string) error {
	ev := r.event(t, step, outcome, cause, details)
	if !r.j.Pending.Secret.IsZero() {
		ev.Fingerprint = e.o.Audit.Fingerprint(r.j.Pending.Secret)
	}
	return e.emit(ctx, r, ev)
}

// emit stamps and records ev.
func (e *Engine) emit(ctx context.Context, r *run, ev Event) error {
	ev.Time = e.now()
	if err := e.o.Audit.Record(ctx, ev); err != nil {
		r.log.Error("audit record failed", zap.String("event", string(ev.Type)), zap.Error(err))
		return fmt.Errorf("%w: %s: %w", ErrAudit, ev.Type, err)
	}
	return nil
}

func (r *run) consumerKey() string {
	switch {
	case r.j.Pending.Key != "":
		return r.j.Pending.Key
	case r.primary != "":
		return r.primary
	case r.consumer.Key != "":
		return r.consumer.Key
	}
	return r.stored.Current.Key
}

// stepDone records step.completed for s.
func (e *Engine) stepDone(ctx context.Context, r *run, s Step) error {
	r.res.Step = s
	r.log.Info("step completed", zap.String(LogKeyStep, string(s)))
	if err := e.record(ctx, r, EventStepCompleted, s, OutcomeOK, nil, nil); err != nil {
		return err
	}
	return e.hook("step:" + string(s))
}
