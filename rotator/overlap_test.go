package rotator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
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
