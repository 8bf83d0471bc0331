package rotator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

var errAmbiguous = fmt.Errorf("fake: connection reset after send: %w", rotator.ErrAmbiguous)

func TestAmbiguousCallsAreReconciledByReRead(t *testing.T) {
	tests := []struct {
		name        string
		op          string
		fault       rotatortest.Fault
		wantPosts   int
		wantPatches int
	}{
		{"a POST that applied is adopted from the slot, never re-sent", rotatortest.OpStage, rotatortest.Fault{Err: errAmbiguous, Apply: true}, 1, 1},
		{"a POST that did not apply is re-sent once after the re-read shows an empty slot", rotatortest.OpStage, rotatortest.Fault{Err: errAmbiguous}, 2, 1},
		{"a PATCH that applied is recognised by the primary key, never re-sent", rotatortest.OpPromote, rotatortest.Fault{Err: errAmbiguous, Apply: true}, 1, 1},
		{"a PATCH that did not apply is re-sent after the re-read shows the entry still Active", rotatortest.OpPromote, rotatortest.Fault{Err: errAmbiguous}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			i2 := watchI2(t, w)
			w.Org.FailNext(tt.op, tt.fault)
			rotate(t, newEngine(t, w, "a", nil), w.App)
			if got := w.Org.Count(rotatortest.OpStage); got != tt.wantPosts {
				t.Errorf("POSTs = %d, want %d", got, tt.wantPosts)
			}
			if got := w.Org.Count(rotatortest.OpPromote); got != tt.wantPatches {
				t.Errorf("PATCHes = %d, want %d", got, tt.wantPatches)
			}
			checkInvariants(t, w, false)
			if len(*i2) > 0 {
				t.Errorf("I2 violated: %v", *i2)
			}
		})
	}
}

// When Salesforce does not return the secret of an Active entry on GET, a
// crash between POST and persist loses the secret for good. The resume
// first waits (bounded) in case the secret-access setting applies late,
// then deletes that entry and fails cleanly — no second POST in the same
// attempt; the next attempt stages afresh.
func TestStagedEntryWithoutReturnableSecretIsDeletedAndRestaged(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.Org.StagedGetReturnsSecret = false
	_, err := newEngine(t, w, "a", crashAt("after:stage#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	lost, _ := w.Org.Slot(w.AppID, w.Consumer())
	advancePastLease(w)
	start := w.Clock.Now()
	_, err = newEngine(t, w, "b", nil).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, rotator.ErrSecretNotReturned)
	if waited := w.Clock.Now().Sub(start); waited < 30*time.Second {
		t.Errorf("waited %s for the secret, want a bounded wait close to the settle budget", waited)
	}
	if sc, ok := w.Org.Slot(w.AppID, w.Consumer()); ok {
		t.Fatalf("the secret-less staged entry %s is left in the slot", sc.ID)
	}
	if got := w.Org.Count(rotatortest.OpStage); got != 1 {
		t.Errorf("POSTs after the failed resume = %d, want 1", got)
	}
	w.Clock.Advance(24 * time.Hour) // past the attempt's backoff
	rotate(t, newEngine(t, w, "c", nil), w.App)
	cur, _ := w.Store.Current(w.App.VaultPath)
	if cur.Current.Key == lost.Key {
		t.Errorf("the unreturnable pair %s was promoted", lost.Key)
	}
	if got := w.Org.Count(rotatortest.OpDeleteStaged); got != 1 {
		t.Errorf("DeleteStaged calls = %d, want 1", got)
	}
	if got := w.Org.Count(rotatortest.OpStage); got != 2 {
		t.Errorf("POSTs = %d, want 2", got)
	}
	checkInvariants(t, w, false)
}

// A staged entry that vanished before promotion (deleted by hand, or 30
// days passed) ends the attempt; the next attempt stages afresh.
func TestStagedEntryLostBeforePromotionRestartsFromStage(t *testing.T) {
	w := rotatortest.NewWorld(1)
	_, err := newEngine(t, w, "a", crashAt("step:persist#1")).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	wantErr(t, err, errCrash)
	w.Clock.Advance(rotator.SalesforceOverlap) // the Active entry expires
	e := newEngine(t, w, "b", nil)
	_, err = e.Resume(context.Background(), w.App)
	wantErr(t, err, rotator.ErrStagedLost)
	checkInvariants(t, w, false)
	w.Clock.Advance(time.Hour)
	rotate(t, e, w.App)
	checkInvariants(t, w, false)
}

// The ECA's app id and consumer id are cached in the app's state after the
// first rotation: the next one does not look the ECA up again, unless the
// cached id no longer matches, when it looks it up and re-caches.
func TestECAIdentifiersAreCachedAndRevalidatedOnMismatch(t *testing.T) {
	w := rotatortest.NewWorld(1)
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpFindApp); got != 1 {
		t.Fatalf("first rotation: FindApp calls = %d, want 1", got)
	}
	cached, _, err := w.Journal.Load(context.Background(), rotator.ECACacheKey(w.App.Name))
	if err != nil || cached.AppID != w.AppID || cached.ConsumerID != w.Consumer() {
		t.Fatalf("cache = %+v, %v; want app %s consumer %s", cached, err, w.AppID, w.Consumer())
	}
	w.Clock.Advance(time.Hour)
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpFindApp); got != 1 {
		t.Errorf("second rotation looked the ECA up again: FindApp calls = %d, want 1", got)
	}
	w.Org.RenumberApp(w.App.ECA, "0xINEW")
	w.Clock.Advance(time.Hour)
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpFindApp); got != 2 {
		t.Errorf("after the app id changed: FindApp calls = %d, want 2 (one re-validation)", got)
	}
	if cached, _, _ := w.Journal.Load(context.Background(), rotator.ECACacheKey(w.App.Name)); cached.AppID != "0xINEW" {
		t.Errorf("cache not refreshed: %+v", cached)
	}
	checkInvariants(t, w, false)
}

// A pinned ECAID skips the lookup entirely.
func TestPinnedECAIDSkipsTheLookup(t *testing.T) {
	w := rotatortest.NewWorld(1)
	w.App.ECAID = w.AppID
	rotate(t, newEngine(t, w, "a", nil), w.App)
	if got := w.Org.Count(rotatortest.OpFindApp); got != 0 {
		t.Errorf("FindApp calls = %d, want 0 with a pinned eca_id", got)
	}
	checkInvariants(t, w, false)
}
