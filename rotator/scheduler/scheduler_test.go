package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// call is one callback invocation seen by a recorder.
type call struct {
	App    string
	Reason string
	At     time.Time
}

// recorder is a RunFunc that records calls; hold, when set, runs inside the
// callback (in the synctest bubble, time.Sleep advances the fake clock).
type recorder struct {
	mu      sync.Mutex
	calls   []call
	running map[string]int
	maxHub  map[string]int
	hubOf   func(app string) string
	hold    func(ctx context.Context, app string) error
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, maxHub: map[string]int{}, hubOf: func(string) string { return "hub" }}
}

func (r *recorder) run(ctx context.Context, app, reason string) error {
	r.mu.Lock()
	r.calls = append(r.calls, call{app, reason, time.Now()})
	h := r.hubOf(app)
	r.running[h]++
	r.maxHub[h] = max(r.maxHub[h], r.running[h])
	hold := r.hold
	r.mu.Unlock()
	var err error
	if hold != nil {
		err = hold(ctx, app)
	}
	r.mu.Lock()
	r.running[h]--
	r.mu.Unlock()
	return err
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// start runs s in the bubble and returns a stop function that cancels it
// and returns Run's error.
func start(t *testing.T, s *Scheduler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	synctest.Wait()
	return func() error {
		cancel()
		return <-errc
	}
}

func mustNew(t *testing.T, o Options) *Scheduler {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestSchedulerStartsEveryRunInsideItsWindow(t *testing.T) {
	var first []call
	for attempt := range 2 {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now() // the bubble starts at 2000-01-01 00:00 UTC
			rec := newRecorder()
			s := mustNew(t, Options{
				Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "0 * * * *", Window: 10 * time.Minute, LastRotation: t0}},
				Run:  rec.run,
			})
			stop := start(t, s)
			time.Sleep(24*time.Hour + 10*time.Minute)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			calls := rec.snapshot()
			if len(calls) != 24 {
				t.Fatalf("got %d runs in 24h, want 24", len(calls))
			}
			for i, c := range calls {
				slot := t0.Add(time.Duration(i+1) * time.Hour)
				if c.At.Before(slot) || !c.At.Before(slot.Add(10*time.Minute)) {
					t.Errorf("run %d at %s, outside [%s, +10m)", i, c.At, slot)
				}
				if want := rotator.SlotStart("billing", slot, 10*time.Minute); !c.At.Equal(want) {
					t.Errorf("run %d at %s, want the app's stable start %s", i, c.At, want)
				}
				if c.Reason != string(ReasonScheduled) {
					t.Errorf("run %d reason %q, want %q", i, c.Reason, ReasonScheduled)
				}
			}
			if attempt == 0 {
				first = calls
				return
			}
			for i := range calls {
				if !calls[i].At.Equal(first[i].At) {
					t.Errorf("run %d: %s on the second run, earlier %s", i, calls[i].At, first[i].At)
				}
			}
		})
	}
}

func TestSchedulerCatchesUpOnceAfterDowntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(10 * time.Minute) // the daemon comes up at 00:10; the 00:00 slot was missed
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			// Last rotation five hours ago: five hourly slots were missed.
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", Window: 30 * time.Minute, MaxAge: 24 * time.Hour, LastRotation: t0.Add(-5 * time.Hour)}},
			Run:  rec.run,
		})
		stop := start(t, s)
		time.Sleep(45 * time.Minute) // until 00:55, before the 01:00 slot
		calls := rec.snapshot()
		if len(calls) != 1 {
			t.Fatalf("got %d runs after downtime, want exactly 1: %v", len(calls), calls)
		}
		// The missed 00:00 slot runs once, at its stable start, or at once
		// (CatchUp) when that start passed while the daemon was down.
		at, reason := rotator.SlotStart("billing", t0.Add(-10*time.Minute), 30*time.Minute), ReasonScheduled
		if at.Before(t0) {
			at, reason = t0, ReasonCatchUp
		}
		if c := calls[0]; c.Reason != string(reason) || !c.At.Equal(at) {
			t.Errorf("got %+v, want a %s run at %s", c, reason, at)
		}
		time.Sleep(30 * time.Minute)
		if calls := rec.snapshot(); len(calls) != 2 || calls[1].Reason != string(ReasonScheduled) {
			t.Errorf("after the next slot got %v, want the catch-up then one scheduled run", calls)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSchedulerMaxAgeRunsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@monthly", Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: t0.Add(-31 * 24 * time.Hour)}},
			Run:  rec.run,
		})
		stop := start(t, s)
		time.Sleep(time.Hour)
		calls := rec.snapshot()
		if len(calls) != 1 || calls[0].Reason != string(ReasonMaxAge) || !calls[0].At.Equal(t0) {
			t.Errorf("got %v, want one MaxAgeExceeded run at %s", calls, t0)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSchedulerDSTParis runs a daily 02:30 Europe/Paris schedule through
// 2000's spring-forward (26 March) and fall-back (29 October) nights.
func TestSchedulerDSTParis(t *testing.T) {
	paris := mustLoc(t, "Europe/Paris")
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "CRON_TZ=Europe/Paris 30 2 * * *", LastRotation: t0}},
			Run:  rec.run,
		})
		stop := start(t, s)
		time.Sleep(time.Until(time.Date(2000, 11, 5, 0, 0, 0, 0, time.UTC)))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		perDay := map[string][]time.Time{}
		for _, c := range rec.snapshot() {
			d := c.At.In(paris).Format(time.DateOnly)
			perDay[d] = append(perDay[d], c.At)
		}
		for _, day := range []string{"2000-03-25", "2000-03-26", "2000-03-27", "2000-10-28", "2000-10-29", "2000-10-30"} {
			if n := len(perDay[day]); n != 1 {
				t.Errorf("%s: %d runs (%v), want 1", day, n, perDay[day])
			}
		}
		if got, want := perDay["2000-03-26"][0].In(paris).Format("15:04 MST"), "03:30 CEST"; got != want {
			t.Errorf("spring-forward run at %s, want %s", got, want)
		}
		if got, want := perDay["2000-10-29"][0].In(paris).Format("15:04 MST"), "02:30 CEST"; got != want {
			t.Errorf("fall-back run at %s, want %s (the first 02:30)", got, want)
		}
		for day, runs := range perDay {
			if len(runs) != 1 {
				t.Errorf("%s: %d runs, want 1", day, len(runs))
			}
		}
	})
}

func TestSchedulerNeverExceedsDevHubConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		hubOf := map[string]string{}
		var apps []App
		for i := range 6 {
			name := fmt.Sprintf("a%d", i)
			hubOf[name] = "alpha"
			apps = append(apps, App{Name: name, DevHub: "alpha", Schedule: "@hourly", LastRotation: t0})
		}
		for i := range 3 {
			name := fmt.Sprintf("b%d", i)
			hubOf[name] = "beta"
			apps = append(apps, App{Name: name, DevHub: "beta", Schedule: "@hourly", LastRotation: t0})
		}
		rec.hubOf = func(app string) string { return hubOf[app] }
		rec.hold = func(ctx context.Context, app string) error {
			time.Sleep(7 * time.Minute)
			return nil
		}
		s := mustNew(t, Options{
			Apps:    apps,
			DevHubs: []DevHub{{Name: "alpha", Concurrency: 2}, {Name: "beta", Concurrency: 3}},
			Run:     rec.run,
		})
		stop := start(t, s)
		time.Sleep(time.Hour + 30*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := len(rec.snapshot()); got != 9 {
			t.Errorf("got %d runs, want 9", got)
		}
		if rec.maxHub["alpha"] != 2 {
			t.Errorf("alpha ran %d at once, want 2", rec.maxHub["alpha"])
		}
		if rec.maxHub["beta"] != 3 {
			t.Errorf("beta ran %d at once, want 3", rec.maxHub["beta"])
		}
		// Six alpha apps, two at a time, seven minutes each: the last pair
		// starts at 01:14.
		var lastAlpha time.Time
		for _, c := range rec.snapshot() {
			if hubOf[c.App] == "alpha" && c.At.After(lastAlpha) {
				lastAlpha = c.At
			}
		}
		if want := t0.Add(time.Hour + 14*time.Minute); !lastAlpha.Equal(want) {
			t.Errorf("last alpha run started %s, want %s", lastAlpha, want)
		}
	})
}

func TestSchedulerDefersAnOrgOverItsAPIBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		var mu sync.Mutex
		usage := rotator.APIUsage{Used: 90, Limit: 100, At: t0}
		var events []Event
		s := mustNew(t, Options{
			Apps:        []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
			DevHubs:     []DevHub{{Name: "hub", Concurrency: 1, APIBudget: 0.8}},
			Run:         rec.run,
			BudgetDefer: 15 * time.Minute,
			UsageTTL:    24 * time.Hour,
			Usage: func(string) (rotator.APIUsage, bool) {
				mu.Lock()
				defer mu.Unlock()
				return usage, true
			},
			Observe: func(e Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e)
			},
		})
		stop := start(t, s)
		time.Sleep(time.Hour + 20*time.Minute) // deferred at 01:00 and 01:15
		if calls := rec.snapshot(); len(calls) != 0 {
			t.Fatalf("ran %v while over budget", calls)
		}
		mu.Lock()
		var deferred []Event
		for _, e := range events {
			if e.Kind == EventDeferred {
				deferred = append(deferred, e)
			}
		}
		usage = rotator.APIUsage{Used: 10, Limit: 100, At: time.Now()}
		mu.Unlock()
		if len(deferred) != 2 || deferred[0].Reason != ReasonAPIBudget || !deferred[0].Until.Equal(t0.Add(time.Hour+15*time.Minute)) {
			t.Errorf("deferred events %+v, want two APIBudgetExceeded deferrals, the first until 01:15", deferred)
		}
		time.Sleep(15 * time.Minute)
		calls := rec.snapshot()
		if len(calls) != 1 || !calls[0].At.Equal(t0.Add(time.Hour+30*time.Minute)) || calls[0].Reason != string(ReasonScheduled) {
			t.Errorf("got %v, want one Scheduled run at 01:30", calls)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSchedulerIgnoresStaleUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			Apps:     []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
			DevHubs:  []DevHub{{Name: "hub", Concurrency: 1, APIBudget: 0.8}},
			Run:      rec.run,
			UsageTTL: 30 * time.Minute,
			Usage: func(string) (rotator.APIUsage, bool) {
				return rotator.APIUsage{Used: 99, Limit: 100, At: t0}, true
			},
		})
		stop := start(t, s)
		time.Sleep(time.Hour + time.Minute)
		if calls := rec.snapshot(); len(calls) != 1 {
			t.Errorf("got %d runs, want 1: a reading an hour old must not defer", len(calls))
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSchedulerRetries(t *testing.T) {
	tests := []struct {
		name string
		fail error
		want time.Duration // after the first run
	}{
		{"a Retry result runs again at its time", Retry(time.Date(2000, 1, 1, 1, 7, 0, 0, time.UTC)), 7 * time.Minute},
		{"a wrapped Retry result is found with errors.As", fmt.Errorf("engine: %w", &RetryError{At: time.Date(2000, 1, 1, 1, 9, 0, 0, time.UTC), Err: rotator.ErrUnreachable}), 9 * time.Minute},
		{"any other error backs off", errors.New("boom"), 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				rec := newRecorder()
				var n int
				rec.hold = func(context.Context, string) error {
					n++ // callbacks of one app never overlap
					if n == 1 {
						return tt.fail
					}
					return nil
				}
				s := mustNew(t, Options{
					Apps:    []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
					Run:     rec.run,
					Backoff: func(int) (bool, time.Duration) { return true, 3 * time.Minute },
				})
				stop := start(t, s)
				time.Sleep(time.Hour + 30*time.Minute)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				calls := rec.snapshot()
				if len(calls) != 2 {
					t.Fatalf("got %v, want two runs", calls)
				}
				if want := t0.Add(time.Hour + tt.want); !calls[1].At.Equal(want) || calls[1].Reason != string(ReasonRetry) {
					t.Errorf("second run %+v, want a Retry run at %s", calls[1], want)
				}
			})
		})
	}
}

func TestSchedulerRetires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rotations, retirements := newRecorder(), newRecorder()
		s := mustNew(t, Options{
			Apps:   []App{{Name: "billing", DevHub: "hub", Schedule: "@yearly", LastRotation: t0, RetireAt: t0.Add(time.Hour)}},
			Run:    rotations.run,
			Retire: retirements.run,
		})
		stop := start(t, s)
		if err := s.ScheduleRetire("ghost", t0); !errors.Is(err, ErrUnknownApp) {
			t.Errorf("ScheduleRetire(ghost) = %v, want ErrUnknownApp", err)
		}
		time.Sleep(2 * time.Hour)
		if err := s.ScheduleRetire("billing", t0.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Hour)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		got := retirements.snapshot()
		if len(got) != 2 || !got[0].At.Equal(t0.Add(time.Hour)) || !got[1].At.Equal(t0.Add(5*time.Hour)) || got[0].Reason != string(ReasonRetire) {
			t.Errorf("retirements %v, want Retire at 01:00 and 05:00", got)
		}
		if n := len(rotations.snapshot()); n != 0 {
			t.Errorf("%d rotations, want none", n)
		}
	})
}

func TestSchedulerReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			Apps: []App{
				{Name: "stays", DevHub: "hub", Schedule: "@hourly", LastRotation: t0},
				{Name: "goes", DevHub: "hub", Schedule: "@hourly", LastRotation: t0},
			},
			DevHubs: []DevHub{{Name: "hub", Concurrency: 5}},
			Run:     rec.run,
		})
		stop := start(t, s)
		time.Sleep(90 * time.Minute) // both run at 01:00
		err := s.Reload([]App{
			{Name: "stays", DevHub: "hub", Schedule: "0 */2 * * *"}, // now every two hours
			{Name: "new", DevHub: "hub", Schedule: "@hourly", LastRotation: t0},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reload([]App{{Name: "bad", Schedule: "nope"}}); err == nil {
			t.Error("Reload with an invalid schedule succeeded")
		}
		time.Sleep(2 * time.Hour) // until 03:30
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, c := range rec.snapshot() {
			count[c.App]++
		}
		want := map[string]int{"stays": 2, "goes": 1, "new": 2} // stays: 01:00, 02:00; new: 02:00, 03:00
		if fmt.Sprint(count) != fmt.Sprint(want) {
			t.Errorf("runs per app %v, want %v", count, want)
		}
		var names []string
		for _, st := range s.Snapshot() {
			names = append(names, st.App)
		}
		if fmt.Sprint(names) != "[new stays]" {
			t.Errorf("Snapshot apps %v, want [new stays]", names)
		}
	})
}

func TestSchedulerShutdown(t *testing.T) {
	tests := []struct {
		name     string
		work     time.Duration // how long the callback runs if not cancelled
		want     error
		stopWait time.Duration // how long Run takes to return after cancel (one second into the run)
	}{
		{"a callback that finishes within the grace period is waited for", 5 * time.Second, nil, 4 * time.Second},
		{"a callback past the grace period is cancelled at the bound", time.Hour, ErrGraceExceeded, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				rec := newRecorder()
				var sawCancel bool
				rec.hold = func(ctx context.Context, _ string) error {
					select {
					case <-time.After(tt.work):
						return nil
					case <-ctx.Done():
						sawCancel = true
						return ctx.Err()
					}
				}
				s := mustNew(t, Options{
					Apps:          []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
					Run:           rec.run,
					ShutdownGrace: 30 * time.Second,
				})
				stop := start(t, s)
				time.Sleep(time.Hour + time.Second) // the run started at 01:00
				cancelled := time.Now()
				err := stop()
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Errorf("Run = %v, want %v", err, tt.want)
				}
				if got := time.Since(cancelled); got != tt.stopWait {
					t.Errorf("Run returned %s after cancel, want %s", got, tt.stopWait)
				}
				if sawCancel != (tt.want != nil) {
					t.Errorf("callback saw cancellation = %v", sawCancel)
				}
			})
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	run := func(context.Context, string, string) error { return nil }
	tests := []struct {
		name string
		opts Options
	}{
		{"a missing run callback", Options{}},
		{"an invalid schedule", Options{Run: run, Apps: []App{{Name: "a", Schedule: "every day"}}}},
		{"duplicate app names", Options{Run: run, Apps: []App{{Name: "a", Schedule: "@daily"}, {Name: "a", Schedule: "@daily"}}}},
		{"a zero Dev Hub concurrency", Options{Run: run, DevHubs: []DevHub{{Name: "h"}}}},
		{"an API budget above one", Options{Run: run, DevHubs: []DevHub{{Name: "h", Concurrency: 1, APIBudget: 1.5}}}},
		{"a negative grace", Options{Run: run, ShutdownGrace: -time.Second}},
		{"a negative window", Options{Run: run, Apps: []App{{Name: "a", Schedule: "@daily", Window: -time.Minute}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Errorf("New succeeded, want an error")
			}
		})
	}
}

func TestRunTwiceFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, Options{Run: func(context.Context, string, string) error { return nil }})
		stop := start(t, s)
		if err := s.Run(t.Context()); !errors.Is(err, ErrAlreadyRunning) {
			t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSchedulerSurvivesAPanickingCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var mu sync.Mutex
		var failures []error
		n := 0
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
			Run: func(context.Context, string, string) error {
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if first {
					panic("nil map")
				}
				return nil
			},
			Backoff: func(int) (bool, time.Duration) { return true, 5 * time.Minute },
			Observe: func(e Event) {
				if e.Kind == EventFailed {
					mu.Lock()
					failures = append(failures, e.Err)
					mu.Unlock()
				}
			},
		})
		stop := start(t, s)
		time.Sleep(time.Hour + 10*time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n != 2 || len(failures) != 1 || !errors.Is(failures[0], ErrPanicked) {
			t.Errorf("runs %d, failures %v; want a panic reported as ErrPanicked and a retry", n, failures)
		}
	})
}

func TestSnapshotReportsThePlan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := mustNew(t, Options{
			Apps: []App{
				{Name: "crm", DevHub: "hub", Schedule: "@daily", Window: time.Hour, LastRotation: t0, RetireAt: t0.Add(48 * time.Hour)},
				{Name: "billing", DevHub: "hub", Schedule: "@yearly", MaxAge: 24 * time.Hour, LastRotation: t0.Add(-12 * time.Hour)},
			},
			Run:    func(context.Context, string, string) error { return nil },
			Retire: func(context.Context, string, string) error { return nil },
		})
		got := s.Snapshot()
		want := []AppState{
			{App: "billing", DevHub: "hub", Next: t0.Add(12 * time.Hour), Reason: ReasonMaxAge, LastRotation: t0.Add(-12 * time.Hour)},
			{App: "crm", DevHub: "hub", Next: rotator.SlotStart("crm", t0.Add(24*time.Hour), time.Hour), Reason: ReasonScheduled, Slot: t0.Add(24 * time.Hour), LastRotation: t0, RetireAt: t0.Add(48 * time.Hour)},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Snapshot =\n %+v\nwant\n %+v", got, want)
		}
	})
}

func TestDefaultBackoffDoublesFromOneMinuteToOneHour(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 6: 32 * time.Minute, 7: time.Hour, 100: time.Hour} {
		if retry, got := DefaultBackoff(attempt); !retry || got != want {
			t.Errorf("DefaultBackoff(%d) = %v, %s; want true, %s", attempt, retry, got, want)
		}
	}
}
