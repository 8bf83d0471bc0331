package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

func TestPlanChangesNothing(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(w *rotatortest.World)
		wantReason rotator.Reason
		wantRotate bool
		check      func(t *testing.T, w *rotatortest.World, p rotator.PlanResult)
	}{
		{
			name:       "a managed app past max age would rotate; the gated slot is not read",
			wantReason: rotator.ReasonMaxAge, wantRotate: true,
			check: func(t *testing.T, w *rotatortest.World, p rotator.PlanResult) {
				if !p.DevHubOK || p.PrimaryKey != w.Initial.Key || p.VaultKey != w.Initial.Key || p.Drift || !p.Managed {
					t.Errorf("plan = %+v", p)
				}
				if p.SecretAccess == nil || *p.SecretAccess || !p.SecretAccessOK || p.StagedReadable {
					t.Errorf("secret access: access %v ok %v readable %v", p.SecretAccess, p.SecretAccessOK, p.StagedReadable)
				}
			},
		},
		{
			name:       "drift is reported as a problem",
			setup:      func(w *rotatortest.World) { w.Org.RotateOutside(w.AppID, w.Consumer()) },
			wantReason: rotator.ReasonMaxAge, wantRotate: false,
			check: func(t *testing.T, _ *rotatortest.World, p rotator.PlanResult) {
				if !p.Drift || len(p.Problems) == 0 {
					t.Errorf("drift not reported: %+v", p)
				}
			},
		},
		{
			name: "a foreign staged entry is reported when the slot is readable",
			setup: func(w *rotatortest.World) {
				w.Org.SetAccess(true)
				w.Org.StageOutside(w.AppID, w.Consumer())
			},
			wantReason: rotator.ReasonMaxAge, wantRotate: false,
			check: func(t *testing.T, _ *rotatortest.World, p rotator.PlanResult) {
				if !p.ForeignStaged || !p.StagedReadable || len(p.Staged) != 1 {
					t.Errorf("foreign staged not reported: %+v", p)
				}
			},
		},
		{
			name: "a recent rotation waits for its slot",
			setup: func(w *rotatortest.World) {
				cur, m := w.Store.Current(w.App.VaultPath)
				cur.RotatedAt = w.Clock.Now().Add(-time.Hour)
				w.Store.Seed(w.App.VaultPath, cur, true)
				_ = m
			},
			wantReason: rotator.ReasonNotDue, wantRotate: false,
		},
		{
			name: "an orphaned journal is reported",
			setup: func(w *rotatortest.World) {
				w.Org.PropagationDelay = 100 * time.Hour
				e := newEngine(t, w, "x", nil)
				for range 3 {
					_, _ = e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
					w.Clock.Advance(time.Hour)
				}
			},
			wantReason: rotator.ReasonOrphaned, wantRotate: false,
			check: func(t *testing.T, _ *rotatortest.World, p rotator.PlanResult) {
				if p.Journal == nil || !p.Journal.Orphaned || p.Journal.OrphanReason == "" {
					t.Errorf("journal = %+v", p.Journal)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			if tt.setup != nil {
				tt.setup(w)
			}
			mut, writes, saves, acquires, events := w.Org.Mutations(), w.Store.Writes(), w.Journal.Saves(), w.Locker.Acquires(), len(w.Audit.Events())
			access := w.Org.Access()
			p, err := newEngine(t, w, "a", nil).Plan(context.Background(), w.App, w.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if p.Decision.Reason != tt.wantReason || p.WouldRotate != tt.wantRotate {
				t.Errorf("decision = %s (would rotate %v, problems %v), want %s/%v", p.Decision.Reason, p.WouldRotate, p.Problems, tt.wantReason, tt.wantRotate)
			}
			if w.Org.Mutations() != mut || w.Store.Writes() != writes || w.Journal.Saves() != saves || w.Locker.Acquires() != acquires || len(w.Audit.Events()) != events || w.Org.Access() != access {
				t.Error("Plan changed something")
			}
			if tt.check != nil {
				tt.check(t, w, p)
			}
		})
	}
}

func TestDryRunReturnsThePlan(t *testing.T) {
	w := rotatortest.NewWorld(1)
	res, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator, DryRun: true})
	if err != nil || res.Plan == nil || res.Outcome != rotator.OutcomeSkipped {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	if w.Org.Mutations() != 0 || w.Store.Writes() != 0 || w.Journal.Saves() != 0 {
		t.Error("dry run changed something")
	}
}
