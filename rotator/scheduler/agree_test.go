package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
	"github.com/ecarotator/ecarotator/rotator/scheduler"
)

// fixedClock is a scheduler clock stopped at one instant; the test never
// runs the loop, it only reads the plan.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                       { return c.t }
func (c fixedClock) NewTimer(time.Duration) rotator.Timer { return nil }

// TestPlanStatusAndTheDaemonAgree is the "one decision" guard: for apps in
// every planning situation (next slot ahead, max age before the slot, a
// missed slot whose window closed, a slot inside its window, different
// windows and schedules), `plan` (Engine.Plan), `status` (PlanChain on
// what Vault holds, as the local status command computes it) and the
// daemon's scheduler (its Snapshot after planning from the same store)
// give the same next time and the same reason.
func TestPlanStatusAndTheDaemonAgree(t *testing.T) {
	w := rotatortest.NewWorld(1)
	now := w.Clock.Now()
	day := 24 * time.Hour
	type appCase struct {
		schedule  string
		window    time.Duration
		maxAge    time.Duration
		rotatedAt time.Time
	}
	cases := map[string]appCase{
		"weekly-ahead":      {"0 3 * * 1", time.Hour, 30 * day, now.Add(-2 * day)},
		"maxage-first":      {"@yearly", 0, 30 * day, now.Add(-20 * day)},
		"missed-closed":     {"0 2 * * *", 30 * time.Minute, 30 * day, now.Add(-3 * day)},
		"inside-window":     {"0 9 * * *", 2 * time.Hour, 30 * day, now.Add(-day)},
		"hourly-wide":       {"@hourly", 45 * time.Minute, 7 * day, now.Add(-10 * time.Minute)},
		"every":             {"@every 6h", time.Hour, 30 * day, now.Add(-time.Hour)},
		"maxage-exceeded":   {"0 3 1 * *", time.Hour, 10 * day, now.Add(-11 * day)},
		"zone-and-no-delay": {"CRON_TZ=Europe/Paris 30 4 * * *", 0, 30 * day, now.Add(-5 * time.Hour)},
	}
	e, err := rotator.NewEngine(w.Options("replica-a", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	var apps []rotator.App
	var schedApps []scheduler.App
	for name, c := range cases {
		app := w.App
		app.Name, app.VaultPath, app.Schedule, app.Window, app.MaxAge = name, "salesforce/"+name, c.schedule, c.window, c.maxAge
		w.Store.Seed(app.VaultPath, rotator.StoredCredentials{Current: w.Initial, TokenURL: app.TokenURL, RotatedAt: c.rotatedAt, RotationID: "seed"}, true)
		apps = append(apps, app)
		schedApps = append(schedApps, scheduler.App{Name: name, DevHub: app.DevHub, Schedule: app.Schedule, Window: app.Window, MaxAge: app.MaxAge, LastRotation: c.rotatedAt})
	}
	s, err := scheduler.New(scheduler.Options{Apps: schedApps, Clock: fixedClock{now}, Run: func(context.Context, string, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	daemon := map[string]scheduler.AppState{}
	for _, st := range s.Snapshot() {
		daemon[st.App] = st
	}
	reasons := map[rotator.Reason]bool{}
	for _, app := range apps {
		p, err := e.Plan(context.Background(), app, now)
		if err != nil {
			t.Fatalf("%s: plan: %v", app.Name, err)
		}
		st, meta, err := w.Store.ReadCredentials(context.Background(), app.VaultPath)
		if err != nil {
			t.Fatal(err)
		}
		in := rotator.NewInput(app, now)
		in.SetStored(st, meta)
		status := rotator.PlanChain.Decide(in)
		d := daemon[app.Name]
		got := fmt.Sprintf("plan %s %s, status %s %s, daemon %s %s", p.Decision.Next.UTC(), p.Decision.NextReason,
			status.Next.UTC(), status.NextReason, d.Next.UTC(), d.Reason)
		if !p.Decision.Next.Equal(d.Next) || !status.Next.Equal(d.Next) || p.Decision.NextReason != d.Reason || status.NextReason != d.Reason {
			t.Errorf("%s disagrees: %s", app.Name, got)
		}
		if d.Next.IsZero() {
			t.Errorf("%s: nothing planned: %s", app.Name, got)
		}
		if p.Decision.Rotate != !d.Next.After(now) {
			t.Errorf("%s: plan says rotate=%v (%s) but the daemon's run is at %s (now %s)", app.Name, p.Decision.Rotate, p.Decision.Reason, d.Next, now)
		}
		reasons[d.Reason] = true
	}
	// The cases must cover slot starts and max age, or the test proves little.
	for _, r := range []rotator.Reason{rotator.ReasonSlot, rotator.ReasonMaxAge} {
		if !reasons[r] {
			t.Errorf("no app planned with reason %s: %v", r, reasons)
		}
	}
}
