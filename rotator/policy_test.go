package rotator_test

import (
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestShouldRotate(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	base := rotator.PolicyInput{
		Now: now, Managed: true, HasCurrent: true, MaxAge: 30 * 24 * time.Hour,
		LastRotated: now.Add(-7 * 24 * time.Hour), SlotStart: now.Add(24 * time.Hour),
	}
	with := func(f func(*rotator.PolicyInput)) rotator.PolicyInput { in := base; f(&in); return in }
	tests := []struct {
		name       string
		in         rotator.PolicyInput
		wantReason rotator.Reason
		wantRotate bool
	}{
		{"nothing is due before the next slot", base, rotator.ReasonNotDue, false},
		{"a started slot is due", with(func(in *rotator.PolicyInput) { in.SlotStart = now.Add(-time.Minute) }), rotator.ReasonScheduled, true},
		{"a slot is due exactly at its start", with(func(in *rotator.PolicyInput) { in.SlotStart = now }), rotator.ReasonScheduled, true},
		{"max age exceeded rotates without a slot", with(func(in *rotator.PolicyInput) { in.LastRotated = now.Add(-31 * 24 * time.Hour) }), rotator.ReasonMaxAge, true},
		{"an unknown age counts as exceeded", with(func(in *rotator.PolicyInput) { in.LastRotated = time.Time{} }), rotator.ReasonMaxAge, true},
		{"an unfinished overlap holds a due slot back", with(func(in *rotator.PolicyInput) {
			in.SlotStart, in.PreviousValidUntil = now.Add(-time.Minute), now.Add(time.Hour)
		}), rotator.ReasonRetiring, false},
		{"max age beats an unfinished overlap", with(func(in *rotator.PolicyInput) {
			in.PreviousValidUntil, in.LastRotated = now.Add(time.Hour), now.Add(-40*24*time.Hour)
		}), rotator.ReasonMaxAge, true},
		{"an ended overlap does not hold back", with(func(in *rotator.PolicyInput) {
			in.SlotStart, in.PreviousValidUntil = now.Add(-time.Minute), now.Add(-time.Second)
		}), rotator.ReasonScheduled, true},
		{"an unmanaged path without adopt is not touched", with(func(in *rotator.PolicyInput) { in.Managed = false }), rotator.ReasonNotManaged, false},
		{"an unmanaged path with adopt is adopted", with(func(in *rotator.PolicyInput) { in.Managed, in.Adopt = false, true }), rotator.ReasonAdopt, true},
		{"a path without current credentials needs adopt", with(func(in *rotator.PolicyInput) { in.HasCurrent = false }), rotator.ReasonNotManaged, false},
		{"an in-flight journal resumes", with(func(in *rotator.PolicyInput) { in.InFlight = true }), rotator.ReasonInFlight, true},
		{"backoff beats an in-flight journal", with(func(in *rotator.PolicyInput) {
			in.InFlight, in.NextAttemptAt = true, now.Add(time.Minute)
		}), rotator.ReasonBackoff, false},
		{"a passed backoff no longer holds", with(func(in *rotator.PolicyInput) {
			in.InFlight, in.NextAttemptAt = true, now
		}), rotator.ReasonInFlight, true},
		{"orphaned beats everything", with(func(in *rotator.PolicyInput) {
			in.Orphaned, in.InFlight, in.LastRotated = true, true, time.Time{}
		}), rotator.ReasonOrphaned, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rotator.ShouldRotate(tt.in)
			if got.Reason != tt.wantReason || got.Rotate != tt.wantRotate {
				t.Errorf("ShouldRotate = %s/%v (%s), want %s/%v", got.Reason, got.Rotate, got.Message, tt.wantReason, tt.wantRotate)
			}
			if got.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestBackoffNextAttempt(t *testing.T) {
	half := func() float64 { return 0.5 }
	zero := func() float64 { return 0 }
	b := rotator.Backoff{Base: 10 * time.Second, Max: 2 * time.Minute, Attempts: 5, Rand: half}
	tests := []struct {
		name      string
		b         rotator.Backoff
		attempt   int
		wantRetry bool
		wantWait  time.Duration
	}{
		{"the first retry waits three quarters of base with mid jitter", b, 1, true, 7500 * time.Millisecond},
		{"the second doubles", b, 2, true, 15 * time.Second},
		{"the fourth is 80s before jitter", b, 4, true, 60 * time.Second},
		{"the wait is capped at max", b, 5, true, 90 * time.Second},
		{"past the allowed attempts there is no retry", b, 6, false, 90 * time.Second},
		{"zero jitter gives half the exponential wait", rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 3, Rand: zero}, 2, true, 10 * time.Second},
		{"jitter near one gives almost the full wait", rotator.Backoff{Base: 10 * time.Second, Max: time.Minute, Attempts: 3, Rand: func() float64 { return 0.999 }}, 1, true, 9995 * time.Millisecond},
		{"attempt zero is treated as the first", b, 0, true, 7500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, wait := tt.b.NextAttempt(tt.attempt)
			if retry != tt.wantRetry || wait != tt.wantWait {
				t.Errorf("NextAttempt(%d) = %v, %s; want %v, %s", tt.attempt, retry, wait, tt.wantRetry, tt.wantWait)
			}
		})
	}
}

func TestPreviousValidUntil(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	exp := at.Add(29 * 24 * time.Hour)
	tests := []struct {
		name    string
		o       rotator.Overlap
		expires time.Time
		want    time.Time
	}{
		{"salesforce-expiry uses the Rotated slot's expiration", rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry}, exp, exp},
		{"salesforce-expiry falls back to 30 days", rotator.Overlap{Policy: rotator.OverlapSalesforceExpiry}, time.Time{}, at.Add(30 * 24 * time.Hour)},
		{"after adds the grace period", rotator.Overlap{Policy: rotator.OverlapAfter, After: 72 * time.Hour}, exp, at.Add(72 * time.Hour)},
		{"after never outlives the slot", rotator.Overlap{Policy: rotator.OverlapAfter, After: 40 * 24 * time.Hour}, exp, exp},
		{"immediate drops the previous pair", rotator.Overlap{Policy: rotator.OverlapImmediate}, exp, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rotator.PreviousValidUntil(tt.o, at, tt.expires); !got.Equal(tt.want) {
				t.Errorf("PreviousValidUntil = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSlotStartIsStableAndInsideTheWindow(t *testing.T) {
	slot, err := rotator.NextSlot("0 3 * * 1", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC); !slot.Equal(want) {
		t.Fatalf("NextSlot = %v, want %v", slot, want)
	}
	a := rotator.SlotStart("billing", slot, time.Hour)
	if !a.Equal(rotator.SlotStart("billing", slot, time.Hour)) {
		t.Error("SlotStart is not deterministic")
	}
	if a.Before(slot) || !a.Before(slot.Add(time.Hour)) {
		t.Errorf("SlotStart %v outside [%v, +1h)", a, slot)
	}
	if b := rotator.SlotStart("payroll", slot, time.Hour); a.Equal(b) {
		t.Log("two apps share a start (possible but unlikely)")
	}
	if _, err := rotator.NextSlot("not a schedule", slot); err == nil {
		t.Error("NextSlot accepted an invalid schedule")
	}
}
