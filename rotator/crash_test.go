package rotator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// hookPoints runs one clean rotation and returns every hook point in the
// order the engine passed it, numbered by occurrence ("before:delete_staged#2").
func hookPoints(t *testing.T, sc crashScenario) []string {
	t.Helper()
	w := sc.world()
	var points []string
	seen := map[string]int{}
	e := newEngine(t, w, "recorder", func(p string) error {
		seen[p]++
		points = append(points, fmt.Sprintf("%s#%d", p, seen[p]))
		return nil
	})
	if _, err := e.Rotate(context.Background(), w.App, sc.req()); err != nil {
		t.Fatal(err)
	}
	return points
}

type crashScenario struct {
	name    string
	overlap rotator.Overlap
	adopt   bool // the path starts unmanaged and is adopted first
}

func (sc crashScenario) world() *rotatortest.World {
	w := rotatortest.NewWorld(1)
	w.App.Overlap = sc.overlap
	if sc.adopt {
		w.Store = rotatortest.NewStore(w.Clock, w.Locker)
		w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: w.Initial}, false)
	}
	return w
}

func (sc crashScenario) req() rotator.Request {
	return rotator.Request{Actor: operator, Adopt: sc.adopt}
}

// crashAt returns a hook that fails at the n-th occurrence of point.
func crashAt(target string) func(string) error {
	seen := map[string]int{}
	return func(p string) error {
		seen[p]++
		if fmt.Sprintf("%s#%d", p, seen[p]) == target {
			return errCrash
		}
		return nil
	}
}

// TestCrashAtEveryStepBoundaryResumes kills the engine at every hook point
// — every step boundary and both sides of every external mutation,
// including between the staged POST's response and the Vault write — then
// lets a fresh engine (another replica, after the lease expired) finish.
func TestCrashAtEveryStepBoundaryResumes(t *testing.T) {
	for _, sc := range []crashScenario{
		{name: "salesforce-expiry", overlap: rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry}},
		{name: "immediate", overlap: rotator.Overlap{Policy: rotator.OverlapImmediate}},
		{name: "adopt then rotate", overlap: rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry}, adopt: true},
	} {
		overlap := sc.overlap
		points := hookPoints(t, sc)
		if len(points) < 19 {
			t.Fatalf("only %d hook points: %v", len(points), points)
		}
		for i, point := range points {
			t.Run(fmt.Sprintf("%s crash at %s", sc.name, point), func(t *testing.T) {
				w := sc.world()
				i2 := watchI2(t, w)
				crashing := newEngine(t, w, "replica-a", crashAt(point))
				_, err := crashing.Rotate(context.Background(), w.App, sc.req())
				wantErr(t, err, errCrash)

				advancePastLease(w)
				fresh := newEngine(t, w, "replica-b", nil)
				var res rotator.Result
				if i%2 == 0 {
					res, err = fresh.Resume(context.Background(), w.App)
				} else {
					res, err = fresh.Rotate(context.Background(), w.App, sc.req())
				}
				if err != nil {
					t.Fatalf("resume after crash: %v", err)
				}
				cur, _ := w.Store.Current(w.App.VaultPath)
				if res.Outcome == rotator.OutcomeSkipped {
					// Crashed before the journal existed: nothing to resume,
					// so a normal rotation follows.
					if cur.Current.Key != w.Initial.Key {
						t.Fatalf("resume skipped but vault changed")
					}
					if res, err = fresh.Rotate(context.Background(), w.App, sc.req()); err != nil {
						t.Fatal(err)
					}
					cur, _ = w.Store.Current(w.App.VaultPath)
				}
				if res.Outcome != rotator.OutcomeOK || cur.Current.Key == w.Initial.Key {
					t.Fatalf("after resume: result %+v, vault current %s (initial %s)", res, cur.Current.Key, w.Initial.Key)
				}
				checkInvariants(t, w, false)
				if _, m := w.Store.Current(w.App.VaultPath); res.VaultVersion != m.Version || res.ConsumerKey != cur.Current.Key {
					t.Errorf("result version %d key %s, store version %d key %s", res.VaultVersion, res.ConsumerKey, m.Version, cur.Current.Key)
				}
				if n := w.Org.StageOK(); n != 1 {
					t.Errorf("successful stages = %d, want exactly 1", n)
				}
				if n := w.Org.Count(rotatortest.OpStage); n != 1 {
					t.Errorf("POSTs = %d, want 1", n)
				}
				if len(*i2) > 0 {
					t.Errorf("I2 violated: %v", *i2)
				}
				if _, ok := w.Journal.Entry(w.App.Name); ok {
					t.Error("journal left behind")
				}
				if overlap.Policy != rotator.OverlapImmediate && cur.Previous.Key != w.Initial.Key {
					t.Errorf("previous in vault = %q, want the initial key", cur.Previous.Key)
				}
			})
		}
	}
}

// TestCrashWithSecretAccessOnLeavesItOn checks I5 for the other prior value:
// the setting was on before the rotation, so nobody switches it off.
func TestCrashWithSecretAccessOnLeavesItOn(t *testing.T) {
	for _, point := range []string{"after:stage#1", "after:promote#1", "step:verify#1"} {
		t.Run("crash at "+point, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			w.Org.SetAccess(true)
			_, err := newEngine(t, w, "a", crashAt(point)).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, errCrash)
			advancePastLease(w)
			if _, err := newEngine(t, w, "b", nil).Resume(context.Background(), w.App); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, w, true)
			if n := w.Org.Count(rotatortest.OpSetAccess); n != 0 {
				t.Errorf("SetSecretAccess calls = %d, want 0", n)
			}
		})
	}
}

// Two apps of one Dev Hub share its secret-access setting. A crashed
// rotation of one is still a holder of the opening while its lease lives:
// the other joins the opening (nothing recorded as "on" before), finishes,
// and leaves the setting open for the crashed one; once that one resumes and
// finishes, the setting is back off (I5 across apps).
func TestTwoAppsOfOneDevHubShareTheSecretAccessSetting(t *testing.T) {
	w := rotatortest.NewWorld(1)
	payroll, appID2, cons2, pairs2 := addApp(w, "payroll")

	_, err := newEngine(t, w, "a", crashAt("after:stage#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	b := newEngine(t, w, "b", nil)
	rotate(t, b, payroll)
	if !w.Org.Access() {
		t.Error("payroll closed the setting while billing's crashed rotation still held it")
	}
	if n := w.Org.Count(rotatortest.OpStage); n != 2 {
		t.Errorf("POSTs = %d, want billing's and payroll's", n)
	}

	advancePastLease(w)
	if _, err := b.Resume(context.Background(), w.App); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, w, false)
	if got := w.Org.Primary(appID2, cons2[0].ID); got.Key == pairs2[0].Key {
		t.Error("payroll not rotated")
	}
	if o, r := w.Audit.Count(rotator.EventSecretAccessOpened), w.Audit.Count(rotator.EventSecretAccessRestored); o != 1 || r != 1 {
		t.Errorf("secret-access events: opened %d, restored %d; want one shared opening", o, r)
	}
}
