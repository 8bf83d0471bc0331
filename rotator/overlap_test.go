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

func TestInOverlapDecidesWhetherRotatingNowRevokes(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	prev := rotator.Credentials{Key: "old", Secret: rotator.NewSecret("s")}
	tests := []struct {
		name string
		st   rotator.StoredCredentials
		want bool
	}{
		{"no previous pair: nothing to revoke", rotator.StoredCredentials{}, false},
		{"previous pair valid for another day: in overlap", rotator.StoredCredentials{Previous: prev, PreviousValidUntil: now.Add(24 * time.Hour)}, true},
		{"previous pair whose overlap ended: free", rotator.StoredCredentials{Previous: prev, PreviousValidUntil: now.Add(-time.Second)}, false},
		{"previous pair ending exactly now: free", rotator.StoredCredentials{Previous: prev, PreviousValidUntil: now}, false},
		{"previous pair with unknown end: in overlap", rotator.StoredCredentials{Previous: prev}, true},
	}
	for _, tt := range tests {
		if got := rotator.InOverlap(tt.st, now); got != tt.want {
			t.Errorf("%s: InOverlap = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOverlapErrorNamesTheEndAndTheWayToApproval(t *testing.T) {
	until := time.Date(2026, 3, 31, 9, 0, 0, 0, time.UTC)
	err := error(&rotator.OverlapError{App: "billing", ValidUntil: until})
	if !errors.Is(err, rotator.ErrPreviousInOverlap) {
		t.Fatal("OverlapError does not match ErrPreviousInOverlap")
	}
	for _, want := range []string{"2026-03-31T09:00:00Z", "previous_valid_until", "retire billing --revoke", "approve"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
}

// TestRevokeRecordsItsIntentBeforeTheDelete: review L4. With the audit
// sink failing at the intent event, the previous pair is not deleted.
func TestRevokeRecordsItsIntentBeforeTheDelete(t *testing.T) {
	w := rotatortest.NewWorld(1)
	e := newEngine(t, w, "a", nil)
	rotate(t, e, w.App)
	w.Audit.FailAfter(0, errors.New("sink down"))
	if _, err := e.RevokePrevious(context.Background(), w.App, operator); !errors.Is(err, rotator.ErrAudit) {
		t.Fatalf("revoke with the sink down: %v, want ErrAudit", err)
	}
	if !w.Org.Accepts(w.Initial) {
		t.Fatal("the previous pair was deleted although its intent event failed")
	}
	w.Audit.FailAfter(-1, nil)
	w.Clock.Advance(time.Hour)
	if _, err := e.RevokePrevious(context.Background(), w.App, operator); err != nil {
		t.Fatal(err)
	}
	types := w.Audit.Types()
	start, done := -1, -1
	for i, ty := range types {
		switch ty {
		case rotator.EventRevokeStarted:
			start = i
		case rotator.EventPreviousRevoked:
			done = i
		}
	}
	if start < 0 || done < start {
		t.Errorf("events %v: want previous.revoke_started before previous.revoked", types)
	}
}

// TestCheckOverlapRefusesOperatorsOnlyAndLetsAJournalResume: the check
// refuses an operator's new rotation during the overlap, passes the
// scheduler (its own rule), and passes an open rotation journal (a resume
// after a crash past the commit).
func TestCheckOverlapRefusesOperatorsOnlyAndLetsAJournalResume(t *testing.T) {
	w := rotatortest.NewWorld(1)
	e := newEngine(t, w, "a", nil)
	if err := e.CheckOverlap(context.Background(), w.App, operator); err != nil {
		t.Fatalf("before any rotation: %v", err)
	}
	rotate(t, e, w.App)
	err := e.CheckOverlap(context.Background(), w.App, operator)
	var oe *rotator.OverlapError
	if !errors.As(err, &oe) || oe.ValidUntil.IsZero() || oe.PreviousKey != w.Initial.Key {
		t.Fatalf("operator during the overlap: %v, want an OverlapError naming the previous key and its end", err)
	}
	if err := e.CheckOverlap(context.Background(), w.App, rotator.Actor{Kind: rotator.ActorScheduler}); err != nil {
		t.Errorf("scheduler: %v, want nil (its rule is the policy's)", err)
	}
	if _, err := w.Journal.Save(context.Background(), w.App.Name, rotator.JournalEntry{App: w.App.Name, Step: rotator.StepCommit}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.CheckOverlap(context.Background(), w.App, operator); err != nil {
		t.Errorf("with an open rotation journal: %v, want nil (resume)", err)
	}
}

// TestAMutationDoesNotOutliveTheLease: review L1. The lease is checked,
// then time passes (a slow journal write, a stalled process) until the
// lease is about to end: the Salesforce mutation that follows is refused
// with ErrFenced instead of running (and retrying) past the lease, so the
// secret-access setting is not opened by a holder that may have lost the
// app.
func TestAMutationDoesNotOutliveTheLease(t *testing.T) {
	w := rotatortest.NewWorld(1)
	stall := func(p string) error {
		if p == "before:open_secret_access" {
			advancePastLease(w)
		}
		return nil
	}
	_, err := newEngine(t, w, "a", stall).Rotate(context.Background(), w.App, rotator.Request{Actor: operator})
	if !errors.Is(err, rotator.ErrFenced) {
		t.Fatalf("Rotate with the lease lapsing before open_secret_access: %v, want ErrFenced", err)
	}
	if w.Org.Access() {
		t.Error("the secret-access setting was opened after the lease lapsed")
	}
	if w.Org.StageOK() != 0 {
		t.Error("a credential was staged after the lease lapsed")
	}
}

// TestTheFenceUsesTheEngineClock: the lease's ExpiresAt is on the
// locker's clock (Vault's writer), the engine measures time on its own
// Clock. A day of difference between them must neither fence a fresh
// lease nor hide a lapsing one: the fence counts the lease from the
// engine's reading taken when it was acquired.
func TestTheFenceUsesTheEngineClock(t *testing.T) {
	w := rotatortest.NewWorld(1)
	o := w.Options("a", nil, nil)
	o.Clock = rotatortest.NewClock(rotatortest.Epoch.Add(24 * time.Hour)) // engine a day ahead of the locker
	e, err := rotator.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rotate(context.Background(), w.App, rotator.Request{Actor: operator}); err != nil {
		t.Fatalf("Rotate with the engine's clock a day ahead of the locker's: %v", err)
	}
	checkInvariants(t, w, false)
}
