package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// App is one app as the scheduler sees it.
type App struct {
	Name     string
	DevHub   string
	Schedule string        // robfig/cron expression (5 fields or descriptor, CRON_TZ=)
	Window   time.Duration // runs start at the app's stable offset inside [slot, slot+Window)
	MaxAge   time.Duration // 0 disables the safety net
	// LastRotation is when the current pair was made (from Vault's
	// rotated_at); zero when unknown.
	LastRotation time.Time
	// RetireAt, when set, schedules the Retire callback (the previous
	// pair's overlap ends then).
	RetireAt time.Time
}

// DevHub holds the limits of one Dev Hub org. Apps whose Dev Hub is not
// listed run one at a time and are never deferred for budget.
type DevHub struct {
	Name string
	// Concurrency is the number of callbacks running at once for the org's
	// apps (at least 1).
	Concurrency int
	// APIBudget is the fraction (0..1] of the org's daily API limit above
	// which runs are deferred; 0 disables the check.
	APIBudget float64
}

// RunFunc is a callback the scheduler starts for an app. reason is one of
// the Reason constants. A nil error means the app was handled (rotated, or
// found not to need it): the max-age clock restarts. An error built with
// Retry asks for another run at a given time; any other error is retried
// after Options.Backoff.
type RunFunc func(ctx context.Context, app string, reason string) error

// RetryError asks the scheduler to run the app again at At.
type RetryError struct {
	At  time.Time
	Err error // the cause, may be nil
}

// Error implements error.
func (e *RetryError) Error() string {
	msg := "retry at " + e.At.UTC().Format(time.RFC3339)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// Retry returns the error a RunFunc returns to be run again at at.
func Retry(at time.Time) error { return &RetryError{At: at} }

// DoneResult is how a RunFunc reports success together with the rotation
// time the store holds (another replica's, or its own write's), so the
// callback returns its result instead of reaching back into the scheduler
// while it runs. The scheduler treats it as a nil error.
type DoneResult struct{ RotatedAt time.Time }

// Error implements error (a DoneResult is never a failure).
func (d *DoneResult) Error() string {
	return "done, rotated at " + d.RotatedAt.UTC().Format(time.RFC3339)
}

// Done returns what a RunFunc returns when the app was handled and the
// store says it was last rotated at rotatedAt.
func Done(rotatedAt time.Time) error { return &DoneResult{RotatedAt: rotatedAt} }

// Errors of the scheduler.
var (
	// ErrUnknownApp: the named app is not scheduled.
	ErrUnknownApp = errors.New("scheduler: unknown app")
	// ErrGraceExceeded: running callbacks outlived the shutdown grace and
	// had their context cancelled.
	ErrGraceExceeded = errors.New("scheduler: shutdown grace exceeded; running callbacks were cancelled")
	// ErrAlreadyRunning: Run was called twice.
	ErrAlreadyRunning = errors.New("scheduler: already running")
	// ErrNoRetire: ScheduleRetire without an Options.Retire callback.
	ErrNoRetire = errors.New("scheduler: no retire callback configured")
)

// EventKind names what happened in the loop.
type EventKind string

// Event kinds reported to Options.Observe.
const (
	EventStarted  EventKind = "started"  // a callback started
	EventFinished EventKind = "finished" // a callback returned nil
	EventFailed   EventKind = "failed"   // a callback returned an error; Until is the retry time
	EventDeferred EventKind = "deferred" // the Dev Hub's API budget deferred a run until Until
)

// Event is one thing the loop did, for logs and metrics.
type Event struct {
	Kind   EventKind
	App    string
	DevHub string
	Reason Reason
	At     time.Time // when it happened
	Until  time.Time // retry/deferral time, zero otherwise
	Err    error
}

// Options configure a Scheduler. Zero durations and nil optional
// dependencies get the documented defaults; validate rejects the rest.
type Options struct {
	Apps    []App
	DevHubs []DevHub
	// Run starts a rotation (required).
	Run RunFunc
	// Retire retires an app's previous pair when its RetireAt arrives
	// (optional; without it RetireAt is ignored).
	Retire RunFunc
	// Usage returns a Dev Hub's last known API usage (optional). It is
	// called with the scheduler's lock held and must not call back into it.
	Usage func(devhub string) (rotator.APIUsage, bool)
	// Clock is the scheduler's only access to time (default
	// rotator.SystemClock, which inside a testing/synctest bubble is the
	// bubble's fake clock).
	Clock rotator.Clock
	// Backoff gives the wait after the attempt-th consecutive failure that
	// did not name its own retry time (its retry answer is ignored: the app
	// is always scheduled again); defaults to DefaultBackoff.
	Backoff rotator.BackoffFunc
	// BudgetDefer is how long a run waits when its Dev Hub is over budget
	// (default 15m).
	BudgetDefer time.Duration
	// UsageTTL ignores usage readings older than this, so an org nobody
	// calls is not deferred forever on a stale figure (default 1h).
	UsageTTL time.Duration
	// ShutdownGrace bounds how long Run waits for running callbacks after
	// its context ends before cancelling theirs (default 30s).
	ShutdownGrace time.Duration
	// Observe receives loop events (optional). It is called from several
	// goroutines, never with the lock held.
	Observe func(Event)
}

// DefaultBackoff doubles from one minute up to one hour.
func DefaultBackoff(attempt int) (bool, time.Duration) {
	return rotator.Backoff{Base: time.Minute, Max: time.Hour, Attempts: rotator.Forever}.NextAttempt(attempt)
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = rotator.SystemClock{}
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.BudgetDefer == 0 {
		o.BudgetDefer = 15 * time.Minute
	}
	if o.UsageTTL == 0 {
		o.UsageTTL = time.Hour
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 30 * time.Second
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Run == nil {
		errs = append(errs, errors.New("run callback is required"))
	}
	if o.BudgetDefer < 0 || o.UsageTTL < 0 || o.ShutdownGrace < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	seen := map[string]bool{}
	for i, h := range o.DevHubs {
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("devhubs[%d]: name is required", i))
		}
		if seen[h.Name] {
			errs = append(errs, fmt.Errorf("devhubs[%d]: duplicate name %q", i, h.Name))
		}
		seen[h.Name] = true
		if h.Concurrency < 1 {
			errs = append(errs, fmt.Errorf("devhubs[%d]: concurrency must be at least 1", i))
		}
		if h.APIBudget < 0 || h.APIBudget > 1 {
			errs = append(errs, fmt.Errorf("devhubs[%d]: api budget must be within [0, 1]", i))
		}
	}
	if err := validateApps(o.Apps); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scheduler: invalid options: %w", err)
	}
	return nil
}

func validateApps(apps []App) error {
	var errs []error
	seen := map[string]bool{}
	for i, a := range apps {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("apps[%d]: name is required", i))
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("apps[%d]: duplicate name %q", i, a.Name))
		}
		seen[a.Name] = true
		if _, err := Parse(a.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("apps[%d]: %w", i, err))
		}
		if a.Window < 0 || a.MaxAge < 0 {
			errs = append(errs, fmt.Errorf("apps[%d]: window and max age must not be negative", i))
		}
	}
	return errors.Join(errs...)
}

// jobKind says which callback a job calls.
type jobKind int

const (
	jobRotate jobKind = iota
	jobRetire
)

// entry is the loop's state for one app.
type entry struct {
	app          App
	gen          uint64 // changes when the app is removed and re-added
	plan         Decision
	lastSlot     time.Time
	lastRotation time.Time
	retryAt      time.Time
	attempts     int
	retireAt     time.Time
	retireTries  int
	deferUntil   time.Time
	running      bool
	// reported is a rotation time the callback learned from the store
	// while running (Rotated); it replaces "now" when the run succeeds.
	reported time.Time
}

// rotateAt is when the next rotation job is due and why.
func (e *entry) rotateAt() (time.Time, Reason) {
	t, r := e.plan.At, e.plan.Reason
	// A retry replaces the plan only when it is earlier: a wait for the
	// previous pair's overlap must not push back a slot or the max-age
	// safety net (review L2).
	if !e.retryAt.IsZero() && (t.IsZero() || !e.retryAt.After(t)) {
		t, r = e.retryAt, ReasonRetry
	}
	if t.IsZero() { // invalid schedule: never
		return t, r
	}
	if e.deferUntil.After(t) {
		t = e.deferUntil
	}
	return t, r
}

// retireDue is when the retire job is due (zero: none).
func (e *entry) retireDue() time.Time {
	if e.retireAt.IsZero() {
		return e.retireAt
	}
	if e.deferUntil.After(e.retireAt) {
		return e.deferUntil
	}
	return e.retireAt
}

// job is one callback the loop starts.
type job struct {
	kind   jobKind
	app    string
	hub    string
	gen    uint64
	reason Reason
	slot   time.Time
	due    time.Time
}

// Scheduler keeps per-app next-run times and starts the callbacks when they
// are due. Create it with New and drive it with Run; Reload, ScheduleRetire
// and Snapshot are safe to call from other goroutines.
type Scheduler struct {
	opts Options

	mu         sync.Mutex
	apps       map[string]*entry
	hubs       map[string]DevHub
	hubRunning map[string]int
	gen        uint64
	started    bool
	stopping   bool

	wake chan struct{} // buffered 1: "state changed, look again"
	wg   sync.WaitGroup
}

// New validates opts and plans every app.
func New(opts Options) (*Scheduler, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{
		opts:       opts,
		apps:       map[string]*entry{},
		hubs:       map[string]DevHub{},
		hubRunning: map[string]int{},
		wake:       make(chan struct{}, 1),
	}
	for _, h := range opts.DevHubs {
		s.hubs[h.Name] = h
	}
	s.replace(opts.Apps)
	return s, nil
}

// Reload replaces the app set (SIGHUP). Apps that stay keep their history
// (last slot, retries, a running callback); changed schedules, windows and
// max ages are re-planned; removed apps are dropped once their running
// callback, if any, returns.
func (s *Scheduler) Reload(apps []App) error {
	if err := validateApps(apps); err != nil {
		return fmt.Errorf("scheduler: reload: %w", err)
	}
	s.replace(apps)
	s.poke()
	return nil
}

func (s *Scheduler) replace(apps []App) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*entry, len(apps))
	for _, a := range apps {
		e, ok := s.apps[a.Name]
		if !ok {
			s.gen++
			e = &entry{gen: s.gen}
		}
		e.app = a
		if a.LastRotation.After(e.lastRotation) {
			e.lastRotation = a.LastRotation
		}
		if !a.RetireAt.IsZero() {
			e.retireAt = a.RetireAt
		}
		s.plan(e, now)
		next[a.Name] = e
	}
	s.apps = next
}

// plan recomputes e's next rotation; the caller holds mu.
func (s *Scheduler) plan(e *entry, now time.Time) {
	e.plan = Due(DueInput{
		Now:          now,
		Schedule:     e.app.Schedule,
		Window:       e.app.Window,
		MaxAge:       e.app.MaxAge,
		LastRotation: e.lastRotation,
		LastSlot:     e.lastSlot,
		App:          e.app.Name,
	})
}

// ScheduleRetire makes the Retire callback run for app at at (replacing an
// earlier retirement time).
func (s *Scheduler) ScheduleRetire(app string, at time.Time) error {
	if s.opts.Retire == nil {
		return ErrNoRetire
	}
	s.mu.Lock()
	e, ok := s.apps[app]
	if ok {
		e.retireAt = at
		e.retireTries = 0
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	s.poke()
	return nil
}

// AppState is one app's schedule as Snapshot reports it.
type AppState struct {
	App           string
	DevHub        string
	Next          time.Time // next rotation start (zero: never, e.g. no further slot)
	Reason        Reason    // why it runs at Next
	Slot          time.Time // the slot Next serves (zero for max age and retries)
	Running       bool
	Attempts      int // consecutive failures
	LastRotation  time.Time
	RetireAt      time.Time
	DeferredUntil time.Time
}

// Snapshot returns every app's state, sorted by name (for status, plan and
// the next-rotation gauge).
func (s *Scheduler) Snapshot() []AppState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppState, 0, len(s.apps))
	for name, e := range s.apps {
		next, reason := e.rotateAt()
		out = append(out, AppState{
			App: name, DevHub: e.app.DevHub, Next: next, Reason: reason, Slot: e.plan.Slot,
			Running: e.running, Attempts: e.attempts, LastRotation: e.lastRotation,
			RetireAt: e.retireAt, DeferredUntil: e.deferUntil,
		})
		if !e.retryAt.IsZero() {
			out[len(out)-1].Slot = time.Time{}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

// poke wakes the loop without blocking.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// idle is how long the loop sleeps when nothing is planned; it re-plans
// nothing on waking, it only looks again.
const idle = 24 * time.Hour

// Run starts due callbacks until ctx ends, then shuts down: no new
// callbacks start, running ones get ShutdownGrace to return, then their
// context is cancelled and Run waits for them. It returns nil after a clean
// stop and ErrGraceExceeded when callbacks had to be cancelled.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return ErrAlreadyRunning
	}
	s.started = true
	s.mu.Unlock()

	// Callbacks outlive ctx by up to the grace period, so their context
	// derives from ctx's values but not its cancellation.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()

	for {
		now := s.opts.Clock.Now()
		jobs, wakeAt, events := s.dispatch(now)
		s.emit(events)
		for _, j := range jobs {
			s.wg.Add(1)
			go s.runJob(jobCtx, j)
		}
		wait := idle
		if !wakeAt.IsZero() {
			wait = wakeAt.Sub(now)
		}
		t := s.opts.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.shutdown(cancelJobs)
		case <-t.C():
		case <-s.wake:
			t.Stop()
		}
	}
}

// shutdown waits for running callbacks up to the grace period, then
// cancels them and waits for them to return.
func (s *Scheduler) shutdown(cancel context.CancelFunc) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { // owned here: Run does not return before it closes done
		s.wg.Wait()
		close(done)
	}()
	t := s.opts.Clock.NewTimer(s.opts.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C():
		cancel()
		<-done
		return ErrGraceExceeded
	}
}

// dispatch picks the jobs to start at now and the next time to look.
func (s *Scheduler) dispatch(now time.Time) (jobs []job, wakeAt time.Time, events []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, time.Time{}, nil
	}
	var due []job
	later := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (wakeAt.IsZero() || t.Before(wakeAt)) {
			wakeAt = t
		}
	}
	for name, e := range s.apps {
		if e.running {
			continue
		}
		rt, reason := e.rotateAt()
		var ret time.Time
		if s.opts.Retire != nil {
			ret = e.retireDue()
		}
		switch {
		case !ret.IsZero() && !ret.After(now) && (rt.IsZero() || !rt.Before(ret)):
			due = append(due, job{kind: jobRetire, app: name, hub: e.app.DevHub, gen: e.gen, reason: ReasonRetire, due: ret})
		case !rt.IsZero() && !rt.After(now):
			j := job{kind: jobRotate, app: name, hub: e.app.DevHub, gen: e.gen, reason: reason, due: rt}
			if reason != ReasonRetry {
				j.slot = e.plan.Slot
			}
			due = append(due, j)
		}
		later(rt)
		later(ret)
	}
	// Earliest first, so an org at its limit serves apps in due order.
	sort.Slice(due, func(i, j int) bool {
		if !due[i].due.Equal(due[j].due) {
			return due[i].due.Before(due[j].due)
		}
		return due[i].app < due[j].app
	})
	for _, j := range due {
		hub, known := s.hubs[j.hub]
		limit := 1
		if known {
			limit = hub.Concurrency
		}
		if s.hubRunning[j.hub] >= limit {
			continue // a finishing callback wakes the loop
		}
		if known && hub.APIBudget > 0 && s.opts.Usage != nil {
			if u, ok := s.opts.Usage(j.hub); ok && now.Sub(u.At) <= s.opts.UsageTTL && u.Fraction() >= hub.APIBudget {
				e := s.apps[j.app]
				e.deferUntil = now.Add(s.opts.BudgetDefer)
				later(e.deferUntil)
				events = append(events, Event{Kind: EventDeferred, App: j.app, DevHub: j.hub, Reason: ReasonAPIBudget, At: now, Until: e.deferUntil,
					Err: fmt.Errorf("devhub %s: API usage %d/%d is above %.0f%% (%s)", j.hub, u.Used, u.Limit, hub.APIBudget*100, j.reason)})
				continue
			}
		}
		s.apps[j.app].running = true
		s.hubRunning[j.hub]++
		jobs = append(jobs, j)
		events = append(events, Event{Kind: EventStarted, App: j.app, DevHub: j.hub, Reason: j.reason, At: now})
	}
	return jobs, wakeAt, events
}

// runJob calls the callback and folds its result into the app's state.
func (s *Scheduler) runJob(ctx context.Context, j job) {
	defer s.wg.Done()
	cb := s.opts.Run
	if j.kind == jobRetire {
		cb = s.opts.Retire
	}
	err := invoke(withSlot(ctx, j.slot), cb, j)
	var done *DoneResult
	if errors.As(err, &done) {
		err = nil
	}

	now := s.opts.Clock.Now()
	ev := Event{Kind: EventFinished, App: j.app, DevHub: j.hub, Reason: j.reason, At: now, Err: err}
	s.mu.Lock()
	s.hubRunning[j.hub]--
	if e, ok := s.apps[j.app]; ok && e.gen == j.gen {
		e.running = false
		if err != nil {
			ev.Kind = EventFailed
		}
		if done != nil && done.RotatedAt.After(e.reported) {
			e.reported = done.RotatedAt
		}
		switch j.kind {
		case jobRotate:
			ev.Until = s.finishRotate(e, j, err, now)
		case jobRetire:
			ev.Until = s.finishRetire(e, err, now)
		}
	}
	s.mu.Unlock()
	s.emit([]Event{ev})
	s.poke()
}

// ErrPanicked wraps a panic inside a callback: the daemon keeps running and
// the app backs off as after any other failure.
var ErrPanicked = errors.New("scheduler: callback panicked")

// invoke runs cb, turning a panic into an error so one bad app cannot take
// the daemon down.
func invoke(ctx context.Context, cb RunFunc, j job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: app %s: %v", ErrPanicked, j.app, p)
		}
	}()
	return cb(ctx, j.app, string(j.reason))
}

// retryTime reads the retry time out of err: a RetryError's own time, else
// the backoff for the attempt.
func (s *Scheduler) retryTime(err error, attempt int, now time.Time) time.Time {
	var re *RetryError
	if errors.As(err, &re) {
		if re.At.Before(now) {
			return now
		}
		return re.At
	}
	_, wait := s.opts.Backoff(attempt)
	return now.Add(wait)
}

// finishRotate records a rotation callback's result; the caller holds mu.
func (s *Scheduler) finishRotate(e *entry, j job, err error, now time.Time) time.Time {
	if j.slot.After(e.lastSlot) {
		e.lastSlot = j.slot // the slot is served, whatever the outcome
	}
	e.deferUntil = time.Time{}
	// A rotation time the callback read from the store wins over the loop's
	// clock; on failure it still records what the store said.
	reported := e.reported
	e.reported = time.Time{}
	if err == nil {
		e.lastRotation = now
		if !reported.IsZero() {
			e.lastRotation = reported
		}
		e.attempts = 0
		e.retryAt = time.Time{}
	} else {
		if reported.After(e.lastRotation) {
			e.lastRotation = reported
		}
		e.attempts++
		e.retryAt = s.retryTime(err, e.attempts, now)
	}
	s.plan(e, now)
	return e.retryAt
}

// finishRetire records a retire callback's result; the caller holds mu.
func (s *Scheduler) finishRetire(e *entry, err error, now time.Time) time.Time {
	e.deferUntil = time.Time{}
	if err == nil {
		e.retireAt = time.Time{}
		e.retireTries = 0
		return time.Time{}
	}
	e.retireTries++
	e.retireAt = s.retryTime(err, e.retireTries, now)
	return e.retireAt
}

func (s *Scheduler) emit(events []Event) {
	if s.opts.Observe == nil {
		return
	}
	for _, ev := range events {
		s.opts.Observe(ev)
	}
}

// slotKey carries a job's slot in the callback's context.
type slotKey struct{}

func withSlot(ctx context.Context, slot time.Time) context.Context {
	return context.WithValue(ctx, slotKey{}, slot)
}

// SlotFromContext returns the cron slot the running callback serves: zero
// for retries, max-age runs and retirements. A daemon running several
// replicas uses it to skip a slot another replica already served.
func SlotFromContext(ctx context.Context) time.Time {
	t, _ := ctx.Value(slotKey{}).(time.Time)
	return t
}

// Rotated tells the scheduler when app's current pair was really made, as
// read from the credential store (another replica may have rotated it, or
// the store's time differs from the loop's clock). Called from the app's
// running callback, it replaces the finish time that a successful run would
// record; called at any other time it moves the app's last rotation forward
// and re-plans it. Aligning every replica on the store's time keeps their
// slots identical for "@every" schedules, whose slots are relative.
func (s *Scheduler) Rotated(app string, at time.Time) {
	if at.IsZero() {
		return
	}
	now := s.opts.Clock.Now()
	s.mu.Lock()
	e, ok := s.apps[app]
	switch {
	case !ok:
	case e.running:
		e.reported = at
	case at.After(e.lastRotation):
		e.lastRotation = at
		s.plan(e, now)
	}
	s.mu.Unlock()
	if ok {
		s.poke()
	}
}

// State returns one app's schedule (Snapshot for a single app).
func (s *Scheduler) State(app string) (AppState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.apps[app]
	if !ok {
		return AppState{}, false
	}
	next, reason := e.rotateAt()
	st := AppState{App: app, DevHub: e.app.DevHub, Next: next, Reason: reason, Slot: e.plan.Slot,
		Running: e.running, Attempts: e.attempts, LastRotation: e.lastRotation,
		RetireAt: e.retireAt, DeferredUntil: e.deferUntil}
	if !e.retryAt.IsZero() {
		st.Slot = time.Time{}
	}
	return st, true
}

// RunAt makes app's rotation callback run at at (reason Retry), unless a
// retry is already planned earlier. The daemon uses it for a journal found
// at start whose engine said "not yet" (backoff, or another holder's lease
// still live), so the resume is not lost until the next slot.
func (s *Scheduler) RunAt(app string, at time.Time) error {
	s.mu.Lock()
	e, ok := s.apps[app]
	if ok && (e.retryAt.IsZero() || at.Before(e.retryAt)) {
		e.retryAt = at
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	s.poke()
	return nil
}
