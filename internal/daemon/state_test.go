package daemon

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestMemoryFollowsTheEngineResults(t *testing.T) {
	at := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	m := newMemory()
	if _, ok := m.get("billing"); ok {
		t.Fatal("an app never seen is in memory")
	}
	m.stored("billing", rotator.StoredCredentials{Current: rotator.Credentials{Key: "K1"}, RotatedAt: at, RotationID: "r1",
		PreviousValidUntil: at.Add(time.Hour)}, 3)
	got, _ := m.get("billing")
	if !got.seeded || got.consumerKey != "K1" || got.vaultVersion != 3 || got.journal != nil {
		t.Fatalf("after the seed: %+v", got)
	}

	steps := []struct {
		name    string
		res     rotator.Result
		err     error
		check   func(appMemo) error
		journal bool
	}{
		{"a wait changes nothing", rotator.Result{Step: rotator.StepLock}, fmt.Errorf("x: %w", rotator.ErrLocked), nil, false},
		{"a failure opens the journal at its step with its error",
			rotator.Result{Step: rotator.StepVerify, RotationID: "r2"}, errors.New("verify: token refused"),
			func(a appMemo) error {
				if a.journal.step != rotator.StepVerify || a.journal.lastError != "verify: token refused" || a.journal.orphaned {
					return fmt.Errorf("journal %+v", *a.journal)
				}
				return nil
			}, true},
		{"an orphan is shown as one",
			rotator.Result{Step: rotator.StepVerify, RotationID: "r2", Orphaned: true}, fmt.Errorf("give up: %w", rotator.ErrOrphaned),
			func(a appMemo) error {
				if !a.journal.orphaned {
					return errors.New("not orphaned")
				}
				return nil
			}, true},
		{"a success closes the journal and names the new version",
			rotator.Result{Outcome: rotator.OutcomeOK, RotationID: "r3", ConsumerKey: "K2", VaultVersion: 4}, nil,
			func(a appMemo) error {
				if a.consumerKey != "K2" || a.vaultVersion != 4 || a.rotationID != "r3" {
					return fmt.Errorf("%+v", a)
				}
				return nil
			}, false},
	}
	for _, s := range steps {
		m.result("billing", s.res, s.err)
		got, _ := m.get("billing")
		if (got.journal != nil) != s.journal {
			t.Fatalf("%s: journal open %v, want %v", s.name, got.journal != nil, s.journal)
		}
		if s.check != nil {
			if err := s.check(got); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
	}
	m.retired("billing")
	if got, _ := m.get("billing"); !got.previousValidUntil.IsZero() {
		t.Fatal("retire left previous_valid_until")
	}
	m.keep(map[string]rotator.App{})
	if _, ok := m.get("billing"); ok {
		t.Fatal("a removed app stays in memory")
	}
}

func TestMemoryNeverHoldsThePendingSecret(t *testing.T) {
	m := newMemory()
	j := rotator.JournalEntry{Step: rotator.StepStage, Pending: rotator.Credentials{Key: "K", Secret: rotator.NewSecret("s3cr3t-value")}}
	m.journaled("billing", &j)
	got, _ := m.get("billing")
	if s := fmt.Sprintf("%+v %+v", got, *got.journal); strings.Contains(s, "s3cr3t-value") {
		t.Fatalf("memory holds the pending secret: %s", s)
	}
}
