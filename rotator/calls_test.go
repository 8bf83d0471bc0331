package rotator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// Tests of the Salesforce call budget (issue 14, "Call counts"): what a
// rotation and a retirement may leave out, and the safety each shortcut
// keeps.

// counts returns the issuer's call counts by operation since before.
func counts(w *rotatortest.World, before map[string]int) map[string]int {
	out := map[string]int{}
	for _, c := range w.Org.Calls() {
		out[c]++
	}
	for k, v := range before {
		out[k] -= v
	}
	return out
}

func afterPolicy(w *rotatortest.World) {
	w.App.Overlap = rotator.Overlap{Policy: rotator.OverlapAfter, After: time.Millisecond}
}

// retire runs Retire after the overlap ended and fails the test on error.
func retire(t *testing.T, w *rotatortest.World, e *rotator.Engine) {
	t.Helper()
	w.Clock.Advance(time.Hour)
	res, err := e.Retire(context.Background(), w.App)
	if err != nil || res.Outcome != rotator.OutcomeOK {
		t.Fatalf("Retire = %+v, %v", res, err)
	}
}

// A Dev Hub whose setting applies a steady 2s late: after the first
// rotation learned the delay, every rotation polls once, at most one
// settle step (250ms) after the setting applied, and reads no pair back
// after its own PATCH — one Credentials call per rotation.
func TestSettleTakesOnePollInTheSteadyState(t *testing.T) {
	const delay = 2 * time.Second
	w := rotatortest.NewWorld(1)
	w.Org.SettingDelay = delay
	afterPolicy(w)
	e := newEngine(t, w, "a", nil)
	for i := range 6 {
		before := counts(w, nil)
		start := w.Clock.Now()
		rotate(t, e, w.App)
		took := w.Clock.Now().Sub(start)
		got := counts(w, before)
		checkInvariants(t, w, false)
		if i >= 1 {
			if got[rotatortest.OpCredentials] != 1 {
				t.Errorf("rotation %d: %d Credentials calls (%v), want 1", i, got[rotatortest.OpCredentials], w.Org.Calls())
			}
			if took < delay || took >= delay+250*time.Millisecond {
				t.Errorf("rotation %d waited %s for a %s delay, want less than one settle step over", i, took, delay)
			}
		}
		retire(t, w, e)
	}
}

// The learned delay follows a delay that grows: one extra poll once, then
// one poll again.
func TestSettleHintFollowsALongerDelay(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.SettingDelay = 2 * time.Second
	afterPolicy(w)
	e := newEngine(t, w, "a", nil)
	polls := func() int {
		before := counts(w, nil)
		rotate(t, e, w.App)
		retire(t, w, e)
		return counts(w, before)[rotatortest.OpCredentials]
	}
	polls()
	polls()
	w.Org.SettingDelay = 3 * time.Second
	if n := polls(); n < 2 {
		t.Errorf("a longer delay was met in %d polls, want a retry", n)
	}
	if n := polls(); n != 1 {
		t.Errorf("after learning the longer delay: %d polls, want 1", n)
	}
}

// When the call opened the setting before preflight (gated reads), the
// settle poll's part=keyandsecret answer is the primary key read: no
// separate PrimaryKey call, and no slot read before the POST.
func TestGatedRotationReadsThePrimaryThroughTheSettlePoll(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.GateReads = true
	i2 := watchI2(t, w)
	rotate(t, newEngine(t, w, "a", nil), w.App)
	checkInvariants(t, w, false)
	got := counts(w, nil)
	if got[rotatortest.OpPrimaryKey] != 0 || got[rotatortest.OpCredentials] != 1 {
		t.Errorf("calls %v: want the primary read by the one settle poll", w.Org.Calls())
	}
	if got[rotatortest.OpStaged] != 0 || got[rotatortest.OpStage] != 1 {
		t.Errorf("calls %v: want one POST and no slot read", w.Org.Calls())
	}
	if len(*i2) > 0 {
		t.Errorf("I2 violated: %v", *i2)
	}
}

// acceptAll is a verifier that accepts every pair: it lets a test reach
// the drift check behind the current pair's token check.
type acceptAll struct{}

func (acceptAll) Verify(context.Context, string, rotator.Credentials) error { return nil }

// Drift is caught by the settle read: another primary key (rotated outside
// ecarotator; Vault's pair still works from the Rotated slot), and the
// same key with another secret. Nothing is changed but the opening, which
// is restored; the event names the keys, never a secret.
func TestDriftIsCaughtByTheSettleRead(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(w *rotatortest.World) string // returns Salesforce's key
		accept bool
		why    string
	}{
		{"another primary key", func(w *rotatortest.World) string { return w.Org.RotateOutside(w.AppID, w.Consumer()).Key }, false, ""},
		{"the same key with another secret", func(w *rotatortest.World) string {
			w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: rotator.Credentials{Key: w.Initial.Key, Secret: rotator.NewSecret("vaults-stale-secret")}, TokenURL: w.App.TokenURL, RotationID: "seed"}, true)
			return w.Initial.Key
		}, true, "secret differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			w.Org.GateReads = true
			sfKey := tt.setup(w)
			_, m := w.Store.Current(w.App.VaultPath)
			opts := w.Options("a", nil, nil)
			if tt.accept {
				opts.Verifier = acceptAll{}
			}
			e, err := rotator.NewEngine(opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, rotator.ErrDrift)
			got := counts(w, nil)
			if got[rotatortest.OpStage]+got[rotatortest.OpPromote]+got[rotatortest.OpDeleteStaged] != 0 {
				t.Errorf("calls %v: a credential mutation after drift", w.Org.Calls())
			}
			if got[rotatortest.OpCredentials] == 0 {
				t.Errorf("calls %v: the drift was not found by the settle read", w.Org.Calls())
			}
			if _, m2 := w.Store.Current(w.App.VaultPath); m2.Version != m.Version {
				t.Error("vault written")
			}
			if w.Org.Access() {
				t.Error("I5: the setting was left open")
			}
			var found bool
			for _, ev := range w.Audit.Events() {
				if ev.Type != rotator.EventDriftDetected {
					continue
				}
				found = true
				if ev.Details["salesforce_key"] != sfKey || ev.Details["vault_key"] != w.Initial.Key || ev.Details["why"] != tt.why {
					t.Errorf("drift details %v, want salesforce %s vault %s why %q", ev.Details, sfKey, w.Initial.Key, tt.why)
				}
			}
			if !found {
				t.Fatal("no drift event")
			}
			for _, s := range []string{"vaults-stale-secret", w.Initial.Secret.Reveal()} {
				if strings.Contains(err.Error(), s) || strings.Contains(w.Audit.JSON(), s) {
					t.Error("a secret leaked into the error or the audit trail")
				}
			}
		})
	}
}

// A fresh rotation POSTs without reading the slot. A Rotated leftover
// that Vault no longer names (its overlap ended in Vault, Salesforce has
// not lapsed it) refuses it; the slot is read, the leftover retired with
// its trace, and the POST sent again.
func TestFirstPostMeetsARotatedLeftover(t *testing.T) {
	w := rotatortest.NewWorld(1) // salesforce-expiry: the Rotated entry stays
	e := newEngine(t, w, "a", nil)
	rotate(t, e, w.App)
	left, ok := w.Org.Slot(w.AppID, w.Consumer())
	if !ok || left.Status != rotator.StagedRotated {
		t.Fatalf("slot after the first rotation = %+v, want a Rotated entry", left)
	}
	cur, _ := w.Store.Current(w.App.VaultPath)
	w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: cur.Current, TokenURL: cur.TokenURL, RotatedAt: cur.RotatedAt, RotationID: cur.RotationID}, true)
	before := counts(w, nil)
	i2 := watchI2(t, w)
	rotate(t, e, w.App)
	got := counts(w, before)
	if got[rotatortest.OpStage] != 2 || got[rotatortest.OpDeleteStaged] != 1 || w.Org.StageOK() != 2 {
		t.Errorf("calls %v (%d created): want a refused POST, the leftover deleted, one POST that created", got, w.Org.StageOK())
	}
	if w.Audit.Count(rotator.EventRetireStarted) != 1 || w.Audit.Count(rotator.EventPreviousRetired) != 1 {
		t.Errorf("events %v: the leftover's delete is not traced", w.Audit.Types())
	}
	checkInvariants(t, w, false)
	if len(*i2) > 0 {
		t.Errorf("I2 violated: %v", *i2)
	}
	if _, _, err := w.Journal.Load(context.Background(), w.App.Name); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("journal left: %v", err)
	}
}

// A POST refused for another reason on an empty slot: the slot is read
// once, and the POST's error stands. Nothing else is sent.
func TestFirstPostRefusedOnAnEmptySlotKeepsItsError(t *testing.T) {
	w := rotatortest.NewWorld(1)
	refusal := errors.New("fake: HTTP 400 INVALID_INPUT: something else")
	w.Org.FailNext(rotatortest.OpStage, rotatortest.Fault{Err: refusal})
	_, m := w.Store.Current(w.App.VaultPath)
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, refusal)
	got := counts(w, nil)
	if got[rotatortest.OpStage] != 1 || got[rotatortest.OpStaged] != 1 || got[rotatortest.OpPromote] != 0 || got[rotatortest.OpDeleteStaged] != 0 {
		t.Errorf("calls %v: want one POST, one slot read, nothing else", w.Org.Calls())
	}
	if _, m2 := w.Store.Current(w.App.VaultPath); m2.Version != m.Version {
		t.Error("vault written")
	}
	if w.Org.Access() {
		t.Error("I5: the setting was left open")
	}
	if j, ok := w.Journal.Entry(w.App.Name); ok && (j.Extra["stage_started_at"] != "" || j.Extra["op"] == "stage") {
		t.Errorf("journal %v still says a POST may be in flight", j.Extra)
	}
}

// A crash right after a POST refused by a foreign entry leaves a journal
// that says a POST was in flight. The resume reads the slot and must not
// take an entry made before that POST for its own.
func TestForeignEntryIsNotAdoptedAfterACrashDuringTheFirstPost(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.SetAccess(true)
	foreign := w.Org.StageOutside(w.AppID, w.Consumer())
	w.Clock.Advance(time.Minute) // made a minute before our POST
	_, m := w.Store.Current(w.App.VaultPath)
	_, err := newEngine(t, w, "a", crashAt("after:stage#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	advancePastLease(w)
	_, err = newEngine(t, w, "b", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrForeignStaged)
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID || sc.Status != rotator.StagedActive {
		t.Errorf("slot %+v, want the foreign entry untouched", sc)
	}
	if w.Org.Count(rotatortest.OpPromote) != 0 || w.Org.Count(rotatortest.OpDeleteStaged) != 0 || w.Org.StageOK() != 0 {
		t.Errorf("calls %v", w.Org.Calls())
	}
	if j, ok := w.Journal.Entry(w.App.Name); ok && j.Pending.Key == foreign.Key {
		t.Error("the foreign pair was taken into the journal")
	}
	if cur, m2 := w.Store.Current(w.App.VaultPath); m2.Version != m.Version || cur.Current.Key == foreign.Key {
		t.Error("vault written")
	}
}

// PATCH rotate's answer names the Rotated entry: commit takes its id and
// expiration from it (no slot read) and records the id for retirement.
// Without it (an org whose answer is another shape) commit lists the
// slot, with the same result.
func TestPromoteAnswerGivesTheRotatedEntry(t *testing.T) {
	for _, omits := range []bool{false, true} {
		w := rotatortest.NewWorld(1)
		w.Org.SetAccess(true)
		w.Org.PromoteOmitsRotated = omits
		rotate(t, newEngine(t, w, "a", nil), w.App)
		checkInvariants(t, w, true)
		slot, ok := w.Org.Slot(w.AppID, w.Consumer())
		if !ok || slot.Status != rotator.StagedRotated {
			t.Fatalf("slot %+v", slot)
		}
		cur, _ := w.Store.Current(w.App.VaultPath)
		if cur.PreviousStagedID != slot.ID || cur.Previous.Key != w.Initial.Key || !cur.PreviousValidUntil.Equal(slot.Expires) {
			t.Errorf("omits=%v: stored previous %s id %s until %s; want %s id %s until %s", omits,
				cur.Previous.Key, cur.PreviousStagedID, cur.PreviousValidUntil, w.Initial.Key, slot.ID, slot.Expires)
		}
		want := 0
		if omits {
			want = 1
		}
		got := counts(w, nil)
		if got[rotatortest.OpStaged] != want || got[rotatortest.OpCredentials] != 0 {
			t.Errorf("omits=%v: calls %v, want %d slot reads and no read-back", omits, w.Org.Calls(), want)
		}
	}
}

// After an ambiguous PATCH the pair is read back before the token checks:
// only a 200 to this call's own PATCH skips it.
func TestVerifyReadsBackAfterAnAmbiguousPromote(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.SetAccess(true)
	w.Org.FailNext(rotatortest.OpPromote, rotatortest.Fault{Err: errAmbiguous, Apply: true})
	rotate(t, newEngine(t, w, "a", nil), w.App)
	checkInvariants(t, w, true)
	if n := w.Org.Count(rotatortest.OpCredentials); n != 1 {
		t.Errorf("Credentials calls = %d, want the read-back", n)
	}
}

// Retirement deletes the Rotated entry by the id the rotation recorded:
// no slot listing. An id that is gone (404) is fine; the slot is then
// listed once to make sure the previous pair is not there.
func TestRetireDeletesTheRecordedEntry(t *testing.T) {
	for _, gone := range []bool{false, true} {
		w := rotatortest.NewWorld(1)
		afterPolicy(w)
		e := newEngine(t, w, "a", nil)
		rotate(t, e, w.App)
		slot, _ := w.Org.Slot(w.AppID, w.Consumer())
		if gone {
			w.Org.SetAccess(true)
			if err := w.Org.DeleteStaged(context.Background(), w.AppID, w.Consumer(), slot.ID); err != nil {
				t.Fatal(err)
			}
			w.Org.SetAccess(false)
		}
		before := counts(w, nil)
		retire(t, w, e)
		got := counts(w, before)
		wantList := 0
		if gone {
			wantList = 1
		}
		if got[rotatortest.OpDeleteStaged] != 1 || got[rotatortest.OpStaged] != wantList {
			t.Errorf("gone=%v: retire calls %v, want one DELETE and %d listings", gone, got, wantList)
		}
		if _, ok := w.Org.Slot(w.AppID, w.Consumer()); ok {
			t.Errorf("gone=%v: the Rotated entry is still there", gone)
		}
		cur, _ := w.Store.Current(w.App.VaultPath)
		if !cur.Previous.IsZero() || cur.PreviousStagedID != "" {
			t.Errorf("gone=%v: path still names the previous pair %s (id %s)", gone, cur.Previous.Key, cur.PreviousStagedID)
		}
		if w.Org.Accepts(rotator.Credentials{Key: w.Initial.Key, Secret: w.Initial.Secret}) {
			t.Errorf("gone=%v: the previous pair still authenticates", gone)
		}
		checkInvariants(t, w, false)
	}
}

// A path still to be adopted reads the slot before anything is written:
// a foreign entry stops the run before the adoption writes Vault.
func TestForeignEntryStopsAnAdoptionBeforeVaultIsWritten(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Store.Seed(w.App.VaultPath, rotator.StoredCredentials{Current: w.Initial}, false)
	foreign := w.Org.StageOutside(w.AppID, w.Consumer())
	writes := w.Store.Writes()
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator, Adopt: true})
	wantErr(t, err, rotator.ErrForeignStaged)
	if w.Store.Writes() != writes {
		t.Error("vault written before the foreign entry stopped the run")
	}
	if w.Org.Count(rotatortest.OpStage) != 0 {
		t.Errorf("calls %v: POST sent for a path still to be adopted", w.Org.Calls())
	}
	if sc, _ := w.Org.Slot(w.AppID, w.Consumer()); sc.ID != foreign.ID {
		t.Error("the foreign entry was touched")
	}
	if w.Org.Access() {
		t.Error("I5: the setting was left open")
	}
}

// While Vault still names a previous pair (its overlap is on), the slot
// most likely holds its Rotated entry: the rotation reads the slot first
// rather than send a POST that would be refused.
func TestOverlapInProgressReadsTheSlotFirst(t *testing.T) {
	w := rotatortest.NewWorld(1) // salesforce-expiry
	e := newEngine(t, w, "a", nil)
	rotate(t, e, w.App)
	before := counts(w, nil)
	rotate(t, e, w.App)
	got := counts(w, before)
	if got[rotatortest.OpStage] != 1 || got[rotatortest.OpDeleteStaged] != 1 {
		t.Errorf("calls %v: want the leftover deleted after a read, then one POST", got)
	}
	if w.Audit.Count(rotator.EventRetireStarted) != 1 || w.Audit.Count(rotator.EventPreviousRetired) != 1 {
		t.Errorf("events %v: the leftover's delete is not traced", w.Audit.Types())
	}
	checkInvariants(t, w, false)
}
