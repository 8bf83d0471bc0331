package rotator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

var operator = rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "test"}

func newEngine(t testing.TB, w *rotatortest.World, holder string, hook func(string) error) *rotator.Engine {
	t.Helper()
	e, err := rotator.NewEngine(w.Options(holder, nil, hook))
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

func rotate(t testing.TB, e *rotator.Engine, app rotator.App) rotator.Result {
	t.Helper()
	res, err := e.Rotate(context.Background(), app, rotator.Request{Actor: operator})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return res
}

// checkInvariants asserts I1 (Vault's current pair is accepted), I5 (secret
// access back at its prior value) and that no Active staged entry is left.
func checkInvariants(t *testing.T, w *rotatortest.World, priorAccess bool) {
	t.Helper()
	cur, _ := w.Store.Current(w.App.VaultPath)
	if !w.Org.Accepts(cur.Current) {
		t.Errorf("I1: vault's current pair (key %s) is not accepted by the issuer", cur.Current.Key)
	}
	if got := w.Org.Access(); got != priorAccess {
		t.Errorf("I5: secret access = %v, want the prior value %v", got, priorAccess)
	}
	if sc, ok := w.Org.Slot(w.AppID, w.Consumer()); ok && sc.Status == rotator.StagedActive {
		t.Errorf("an Active staged entry (%s) is left over", sc.ID)
	}
}

// watchI2 fails the test when an issuer mutation starts while a pair the
// issuer handed out (and that still lives there) is neither in the journal
// nor in the store.
func watchI2(t *testing.T, w *rotatortest.World) *[]string {
	t.Helper()
	var violations []string
	w.Org.BeforeMutation = func(op string) {
		for _, p := range w.Org.LiveIssued() {
			if !w.Journal.Holds(p) && !w.Store.Holds(p) {
				violations = append(violations, op+": pair "+p.Key+" only in memory")
			}
		}
	}
	return &violations
}

var errCrash = errors.New("simulated crash")

func advancePastLease(w *rotatortest.World) { w.Clock.Advance(11 * time.Minute) }

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}
