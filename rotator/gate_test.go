package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

func hasEvent(w *rotatortest.World, t rotator.EventType) bool {
	for _, ty := range w.Audit.Types() {
		if ty == t {
			return true
		}
	}
	return false
}

// When Salesforce gates the reads (usage, consumers, part=key) behind the
// secret-access setting, toggle mode opens it (journaled first) and reads
// again; the setting ends at its prior value.
func TestToggleModeOpensTheSettingWhenReadsAreGated(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.GateReads = true
	rotate(t, newEngine(t, w, "a", nil), w.App)
	checkInvariants(t, w, false)
	if !hasEvent(w, rotator.EventSecretAccessOpened) || !hasEvent(w, rotator.EventSecretAccessRestored) {
		t.Errorf("events %v, want the opening and the restore audited", w.Audit.Types())
	}
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
}

// A crash right after the early opening leaves a journal that the next
// run resumes; the setting is restored at its end (I5).
func TestEarlyOpeningSurvivesACrash(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.GateReads = true
	_, err := newEngine(t, w, "a", crashAt("after:open_secret_access#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	if !w.Org.Access() {
		t.Fatal("the crash point was not after the opening")
	}
	advancePastLease(w)
	rotate(t, newEngine(t, w, "b", nil), w.App)
	checkInvariants(t, w, false)
}

// always_on mode never opens the setting: a gated read stops the
// rotation before any mutation.
func TestAlwaysOnModeStopsOnAGatedRead(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.GateReads = true
	w.App.SecretAccessMode = rotator.SecretAccessAlwaysOn
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrPermission)
	if w.Org.Access() || w.Org.Count(rotatortest.OpSetAccess) != 0 || w.Org.Count(rotatortest.OpStage) != 0 {
		t.Errorf("always_on changed something: calls %v", w.Org.Calls())
	}
}

// A setting that applies late is waited for (bounded, on the injected
// sleep) before the POST: one POST, no secret-less staged entry.
func TestLateSettingIsWaitedForBeforePosting(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.WithholdCredentials = 3
	start := w.Clock.Now()
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
	if w.Clock.Now().Sub(start) < 250*time.Millisecond {
		t.Errorf("no wait on the clock for the setting")
	}
	checkInvariants(t, w, false)
}

// A POST answered without the secret (the setting applied between the
// check and the POST) costs no second POST: the engine waits for GET
// staged to show the secret and persists it.
func TestSecretLessPostIsSettledWithoutASecondPost(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.StagedGetReturnsSecret = true
	w.Org.WithholdStaged = 3 // the POST and two GETs
	i2 := watchI2(t, w)
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
	if got := w.Org.Count(rotatortest.OpDeleteStaged); got != 0 {
		t.Errorf("DeleteStaged = %d, want 0", got)
	}
	checkInvariants(t, w, false)
	if len(*i2) > 0 {
		t.Errorf("I2 violated: %v", *i2)
	}
}

// If the secret never comes, the entry we created is deleted and the
// attempt fails cleanly: no staged entry whose secret we do not hold, no
// second POST, the setting restored.
func TestSecretThatNeverComesDeletesTheEntryAndFails(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.StagedGetReturnsSecret = true
	w.Org.WithholdStaged = 1 << 20
	_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrSecretNotReturned)
	if sc, ok := w.Org.Slot(w.AppID, w.Consumer()); ok {
		t.Errorf("staged entry %s left behind", sc.ID)
	}
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs = %d, want 1", got)
	}
	if w.Org.Access() {
		t.Error("I5: the setting was left open")
	}
	cur, _ := w.Store.Current(w.App.VaultPath)
	if !w.Org.Accepts(cur.Current) {
		t.Error("I1: vault's current pair no longer works")
	}
}

// Before any mutation the current pair must get a token at every verify
// URL: a refused pair is drift, an org that cannot issue the token is a
// misconfiguration; neither changes anything.
func TestPreflightProvesTheCurrentPair(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *rotatortest.World)
		want  error
	}{
		{"a current pair Salesforce refuses is drift", func(w *rotatortest.World) {
			cur, _ := w.Store.Current(w.App.VaultPath)
			cur.Current.Secret = rotator.NewSecret("not-the-secret")
			w.Store.Seed(w.App.VaultPath, cur, true)
		}, rotator.ErrDrift},
		{"a verify org without client credentials is a misconfiguration", func(w *rotatortest.World) {
			w.Verifier.Misconfigure(w.App.VerifyURLs[0])
		}, rotator.ErrMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			rotate(t, newEngine(t, w, "a", nil), w.App)
			w.Clock.Advance(time.Hour)
			tt.setup(w)
			before := w.Org.Count(rotatortest.OpStage) + w.Org.Count(rotatortest.OpSetAccess)
			_, err := newEngine(t, w, "a", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
			wantErr(t, err, tt.want)
			if after := w.Org.Count(rotatortest.OpStage) + w.Org.Count(rotatortest.OpSetAccess); after != before {
				t.Errorf("mutations after the refusal: %v", w.Org.Calls())
			}
		})
	}
}

// A dry run never opens the setting: with reads gated in toggle mode the
// plan says so instead of reporting a problem.
func TestPlanReportsGatedReadsWithoutAProblem(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.GateReads = true
	p, err := newEngine(t, w, "a", nil).Plan(context.Background(), w.App, w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !p.ReadsGated || !p.DevHubOK || len(p.Problems) != 0 {
		t.Errorf("plan %+v, want reads gated, dev hub ok, no problems", p)
	}
	if w.Org.Access() || w.Org.Count(rotatortest.OpSetAccess) != 0 {
		t.Error("the plan opened the setting")
	}
}
