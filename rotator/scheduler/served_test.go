package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestSchedulerPassesTheSlotToTheCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		var mu sync.Mutex
		var slots []time.Time
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@hourly", LastRotation: t0}},
			Run: func(ctx context.Context, _, _ string) error {
				mu.Lock()
				slots = append(slots, SlotFromContext(ctx))
				mu.Unlock()
				return nil
			},
		})
		stop := start(t, s)
		time.Sleep(2*time.Hour + time.Minute)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)}
		if len(slots) != len(want) {
			t.Fatalf("got slots %v, want %v", slots, want)
		}
		for i := range want {
			if !slots[i].Equal(want[i]) {
				t.Errorf("run %d: slot %s, want %s", i, slots[i], want[i])
			}
		}
	})
}

func TestSchedulerRotatedAlignsEverySlotsOnTheStoresTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		// Another replica served the t0+40s slot and rotated at t0+43s
		// (its own jitter); this one's callback learns that from the store
		// and reports it while running. The next slot must follow the
		// store's time, as on the other replica, not this run's.
		other := t0.Add(43 * time.Second)
		var mu sync.Mutex
		var runs []time.Time
		var s *Scheduler
		run := func(ctx context.Context, app, _ string) error {
			mu.Lock()
			runs = append(runs, time.Now())
			first := len(runs) == 1
			mu.Unlock()
			if first {
				time.Sleep(5 * time.Second) // reading the store takes time
				s.Rotated(app, other)
			}
			return nil
		}
		s = mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@every 40s", Window: 10 * time.Second, LastRotation: t0}},
			Run:  run,
		})
		stop := start(t, s)
		time.Sleep(100 * time.Second)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []time.Time{rotator.SlotStart("billing", t0.Add(40*time.Second), 10*time.Second), rotator.SlotStart("billing", other.Add(40*time.Second), 10*time.Second)}
		if len(runs) < 2 || !runs[0].Equal(want[0]) || !runs[1].Equal(want[1]) {
			t.Fatalf("runs at %v, want the first two at %v", runs, want)
		}
		st, _ := s.State("billing")
		if !st.LastRotation.Equal(want[1]) {
			t.Errorf("last rotation %s, want the second run's time %s", st.LastRotation, want[1])
		}
	})
}

func TestSchedulerRunAtPlansARetryBeforeTheNextSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := newRecorder()
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@daily", LastRotation: t0}},
			Run:  rec.run,
		})
		stop := start(t, s)
		if err := s.RunAt("billing", t0.Add(time.Minute)); err != nil {
			t.Fatalf("RunAt: %v", err)
		}
		if err := s.RunAt("nobody", t0); !errors.Is(err, ErrUnknownApp) {
			t.Errorf("RunAt(unknown) = %v, want ErrUnknownApp", err)
		}
		time.Sleep(2 * time.Minute)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		calls := rec.snapshot()
		if len(calls) != 1 || !calls[0].At.Equal(t0.Add(time.Minute)) || calls[0].Reason != string(ReasonRetry) {
			t.Fatalf("calls %+v, want one Retry run at %s", calls, t0.Add(time.Minute))
		}
	})
}

// TestDoneReportsTheStoresRotationTime: a callback returns Done with the
// rotation time the store holds (here another replica's) instead of
// calling back into the scheduler while it runs; the run counts as a
// success and the next slot follows the store's time.
func TestDoneReportsTheStoresRotationTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		other := t0.Add(43 * time.Second) // read from the store while the run took 5s
		var events []Event
		var mu sync.Mutex
		s := mustNew(t, Options{
			Apps:    []App{{Name: "billing", DevHub: "hub", Schedule: "@every 40s", Window: 30 * time.Second, LastRotation: t0}},
			Run:     func(context.Context, string, string) error { time.Sleep(5 * time.Second); return Done(other) },
			Observe: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() },
		})
		stop := start(t, s)
		time.Sleep(80 * time.Second) // the first run starts in [40s, 70s) and takes 5s
		st, _ := s.State("billing")
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if !st.LastRotation.Equal(other) || st.Attempts != 0 {
			t.Errorf("last rotation %s, attempts %d; want the store's %s and no failure", st.LastRotation, st.Attempts, other)
		}
		if want := rotator.SlotStart("billing", other.Add(40*time.Second), 30*time.Second); !st.Next.Equal(want) {
			t.Errorf("next run %s, want %s (a period after the store's time)", st.Next, want)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Kind == EventFailed {
				t.Errorf("Done counted as a failure: %+v", ev)
			}
		}
	})
}
