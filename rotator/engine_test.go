package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

func TestHappyPathPerOverlapPolicy(t *testing.T) {
	tests := []struct {
		name      string
		overlap   rotator.Overlap
		wantUntil func(rotatedAt time.Time) time.Time
		// retireAt is how long after the rotation Retire removes the previous pair.
		retireAt     time.Duration
		slotDeleted  bool // Retire (or commit) deletes the Rotated slot
		prevInVault  bool // the previous pair is in Vault right after commit
		wantRetireEv rotator.EventType
	}{
		{
			name:    "salesforce-expiry keeps the previous pair until the Rotated slot lapses",
			overlap: rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry},
			wantUntil: func(r time.Time) time.Time {
				return r.Add(rotator.SalesforceOverlap)
			},
			retireAt: rotator.SalesforceOverlap, prevInVault: true, wantRetireEv: rotator.EventPreviousRetired,
		},
		{
			name:      "after deletes the Rotated slot once the grace period has passed",
			overlap:   rotator.Overlap{Policy: rotator.OverlapAfter, After: 48 * time.Hour},
			wantUntil: func(r time.Time) time.Time { return r.Add(48 * time.Hour) },
			retireAt:  48 * time.Hour, slotDeleted: true, prevInVault: true, wantRetireEv: rotator.EventPreviousRetired,
		},
		{
			name:        "immediate drops the previous pair and its slot at commit",
			overlap:     rotator.Overlap{Policy: rotator.OverlapImmediate},
			wantUntil:   func(time.Time) time.Time { return time.Time{} },
			slotDeleted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rotatortest.NewWorld(1)
			w.App.Overlap = tt.overlap
			i2 := watchI2(t, w)
			e := newEngine(t, w, "replica-a", nil)
			rotatedAt := w.Clock.Now()
			res := rotate(t, e, w.App)

			cur, meta := w.Store.Current(w.App.VaultPath)
			if res.Outcome != rotator.OutcomeOK || res.ConsumerKey != cur.Current.Key || res.VaultVersion != meta.Version {
				t.Fatalf("result = %+v, store current key %s version %d", res, cur.Current.Key, meta.Version)
			}
			if cur.Current.Key == w.Initial.Key || cur.RotationID != res.RotationID {
				t.Fatalf("store current = %s (rotation %s), want a new pair from rotation %s", cur.Current.Key, cur.RotationID, res.RotationID)
			}
			if !w.Org.Accepts(cur.Current) {
				t.Error("new pair does not authenticate")
			}
			if got := cur.PreviousValidUntil; !got.Equal(tt.wantUntil(rotatedAt)) {
				t.Errorf("previous valid until = %v, want %v", got, tt.wantUntil(rotatedAt))
			}
			if got := cur.Previous.Key == w.Initial.Key; got != tt.prevInVault {
				t.Errorf("previous pair in vault = %v, want %v", got, tt.prevInVault)
			}
			if w.Org.Accepts(w.Initial) == (tt.overlap.Policy == rotator.OverlapImmediate) {
				t.Errorf("old pair accepted = %v right after commit under %s", w.Org.Accepts(w.Initial), tt.overlap.Policy)
			}
			if _, ok := w.Journal.Entry(w.App.Name); ok {
				t.Error("journal not cleared")
			}
			if w.Locker.Held("app/" + w.App.Name) {
				t.Error("lease not released")
			}
			if w.Org.StageOK() != 1 {
				t.Errorf("successful stages = %d, want 1", w.Org.StageOK())
			}
			checkInvariants(t, w, false)
			if len(*i2) > 0 {
				t.Errorf("I2 violated: %v", *i2)
			}
			for _, ev := range []rotator.EventType{rotator.EventRotationStarted, rotator.EventSecretAccessOpened, rotator.EventSecretAccessRestored, rotator.EventRotationSucceeded} {
				if w.Audit.Count(ev) != 1 {
					t.Errorf("events %s = %d, want 1 (all: %v)", ev, w.Audit.Count(ev), w.Audit.Types())
				}
			}

			if tt.overlap.Policy == rotator.OverlapImmediate {
				return
			}
			// Before the overlap ends Retire does nothing.
			r1, err := e.Retire(context.Background(), w.App)
			if err != nil || r1.Outcome != rotator.OutcomeSkipped {
				t.Fatalf("early Retire = %+v, %v; want skipped", r1, err)
			}
			if !w.Org.Accepts(w.Initial) {
				t.Fatal("previous pair rejected during the overlap")
			}
			w.Clock.Advance(tt.retireAt)
			r2, err := e.Retire(context.Background(), w.App)
			if err != nil || r2.Outcome != rotator.OutcomeOK {
				t.Fatalf("Retire = %+v, %v", r2, err)
			}
			after, _ := w.Store.Current(w.App.VaultPath)
			if !after.Previous.IsZero() || !after.PreviousValidUntil.IsZero() || after.Current.Key != cur.Current.Key {
				t.Errorf("after retire store = current %s previous %q until %v", after.Current.Key, after.Previous.Key, after.PreviousValidUntil)
			}
			if w.Org.Accepts(w.Initial) {
				t.Error("previous pair still accepted after Retire")
			}
			_, slot := w.Org.Slot(w.AppID, w.Consumer())
			if slot {
				t.Error("Rotated slot still present after retire")
			}
			if w.Audit.Count(tt.wantRetireEv) != 1 {
				t.Errorf("events %s = %d, want 1", tt.wantRetireEv, w.Audit.Count(tt.wantRetireEv))
			}
			checkInvariants(t, w, false)
		})
	}
}
