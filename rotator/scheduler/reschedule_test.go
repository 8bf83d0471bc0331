package scheduler

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestARetryNeverPostponesThePlan: review L2. A run that must wait for the
// previous pair's overlap (≈30 days) used to replace the planned run, so
// the max-age safety net was not looked at again until the overlap ended.
func TestARetryNeverPostponesThePlan(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	e := &entry{plan: Decision{At: now.Add(time.Hour), Reason: ReasonMaxAge}}
	e.retryAt = now.Add(30 * 24 * time.Hour)
	if at, r := e.rotateAt(); !at.Equal(now.Add(time.Hour)) || r != ReasonMaxAge {
		t.Errorf("late retry: rotateAt = %s %s, want the max-age plan in an hour", at, r)
	}
	e.retryAt = now.Add(time.Minute)
	if at, r := e.rotateAt(); !at.Equal(now.Add(time.Minute)) || r != ReasonRetry {
		t.Errorf("early retry: rotateAt = %s %s, want the retry in a minute", at, r)
	}
}

// TestClearRetryReplansFromTheSchedule: after a revoke the overlap wait is
// dropped and the app's next run is its plan again.
func TestClearRetryReplansFromTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		s := mustNew(t, Options{
			Apps: []App{{Name: "billing", DevHub: "hub", Schedule: "@daily", MaxAge: time.Hour, LastRotation: t0}},
			Run:  newRecorder().run,
		})
		if err := s.RunAt("billing", t0.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.State("billing"); st.Reason != ReasonRetry {
			t.Fatalf("after RunAt: %+v, want a retry", st)
		}
		s.ClearRetry("billing")
		s.ClearRetry("nobody") // ignored
		if st, _ := s.State("billing"); st.Reason == ReasonRetry || st.Next.IsZero() || st.Next.After(t0.Add(time.Hour)) {
			t.Errorf("after ClearRetry: %+v, want the max-age plan within the hour", st)
		}
	})
}
