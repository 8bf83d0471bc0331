package rotator_test

import (
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestShouldRotate(t *testing.T) {
	// Daily at noon with a one-hour window; the last rotation was
	// yesterday's, so today's slot is the next one.
	slot := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	now := slot.Add(-2 * time.Hour)
	inWindow := slot.Add(time.Hour - time.Second) // the slot's start has come, whatever the app's offset
	base := rotator.Input{
		Now: now, App: "billing", Schedule: "0 12 * * *", Window: time.Hour, Managed: true, HasCurrent: true,
		MaxAge: 30 * 24 * time.Hour, LastRotated: slot.Add(-24*time.Hour + 30*time.Minute),
	}
	with := func(f func(*rotator.Input)) rotator.Input { in := base; f(&in); return in }
	tests := []struct {
		name       string
		in         rotator.Input
		wantReason rotator.Reason
		wantRotate bool
	}{
		{"nothing is due before the next slot", base, rotator.ReasonNotDue, false},
		{"a started slot is due", with(func(in *rotator.Input) { in.Now = inWindow }), rotator.ReasonScheduled, true},
		{"max age exceeded rotates without a slot", with(func(in *rotator.Input) { in.LastRotated = now.Add(-31 * 24 * time.Hour) }), rotator.ReasonMaxAge, true},
		{"an unknown age counts as exceeded", with(func(in *rotator.Input) { in.LastRotated = time.Time{} }), rotator.ReasonMaxAge, true},
		{"an unfinished overlap holds a due slot back", with(func(in *rotator.Input) {
			in.Now, in.PreviousValidUntil = inWindow, inWindow.Add(time.Hour)
		}), rotator.ReasonRetiring, false},
		{"an unfinished overlap before the slot leaves the plan as it is", with(func(in *rotator.Input) {
			in.PreviousValidUntil = now.Add(time.Hour)
		}), rotator.ReasonNotDue, false},
		{"max age beats an unfinished overlap", with(func(in *rotator.Input) {
			in.PreviousValidUntil, in.LastRotated = now.Add(time.Hour), now.Add(-40*24*time.Hour)
		}), rotator.ReasonMaxAge, true},
		{"an ended overlap does not hold back", with(func(in *rotator.Input) {
			in.Now, in.PreviousValidUntil = inWindow, inWindow.Add(-time.Second)
		}), rotator.ReasonScheduled, true},
		{"an unmanaged path without adopt is not touched", with(func(in *rotator.Input) { in.Managed = false }), rotator.ReasonNotManaged, false},
		{"an unmanaged path with adopt is adopted", with(func(in *rotator.Input) { in.Managed, in.Adopt = false, true }), rotator.ReasonAdopt, true},
		{"a path without current credentials needs adopt", with(func(in *rotator.Input) { in.HasCurrent = false }), rotator.ReasonNotManaged, false},
		{"an in-flight journal resumes", with(func(in *rotator.Input) { in.InFlight = true }), rotator.ReasonInFlight, true},
		{"backoff beats an in-flight journal", with(func(in *rotator.Input) {
			in.InFlight, in.NextAttemptAt = true, now.Add(time.Minute)
		}), rotator.ReasonBackoff, false},
		{"a passed backoff no longer holds", with(func(in *rotator.Input) {
			in.InFlight, in.NextAttemptAt = true, now
		}), rotator.ReasonInFlight, true},
		{"orphaned beats everything", with(func(in *rotator.Input) {
			in.Orphaned, in.InFlight, in.LastRotated = true, true, time.Time{}
		}), rotator.ReasonOrphaned, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rotator.PlanChain.Decide(tt.in)
			if got.Reason != tt.wantReason || got.Rotate != tt.wantRotate {
				t.Errorf("Decide = %s/%v (%s), want %s/%v", got.Reason, got.Rotate, got.Message, tt.wantReason, tt.wantRotate)
			}
			if got.Message == "" {
				t.Error("empty message")
			}
		})
	}
	t.Run("the next run is the slot's stable start", func(t *testing.T) {
		got := rotator.PlanChain.Decide(base)
		if want := rotator.SlotStart("billing", slot, time.Hour); !got.Next.Equal(want) || got.NextReason != rotator.ReasonSlot || !got.Slot.Equal(slot) {
			t.Errorf("next %s (%s, slot %s), want %s (%s, slot %s)", got.Next, got.NextReason, got.Slot, want, rotator.ReasonSlot, slot)
		}
	})
}

// TestScheduledRunChain is the daemon's "does this run rotate?" under the
// app's lease: the slot served exactly once, journals first, max age
// beating an unfinished overlap.
func TestScheduledRunChain(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday
	slot := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	const weekly = "0 9 * * 1"
	base := rotator.Input{
		Now: now, App: "billing", Schedule: weekly, Window: 2 * time.Hour, MaxAge: 30 * 24 * time.Hour,
		Managed: true, HasCurrent: true, LastRotated: slot.Add(-7 * 24 * time.Hour), RunReason: rotator.ReasonSlot, Slot: slot,
	}
	with := func(f func(*rotator.Input)) rotator.Input { in := base; f(&in); return in }
	tests := []struct {
		name       string
		in         rotator.Input
		wantReason rotator.Reason
		wantRotate bool
		wantSkip   bool
	}{
		{"a due slot rotates", base, rotator.ReasonScheduled, true, false},
		{"a rotation at or after the slot serves it", with(func(in *rotator.Input) { in.LastRotated = slot.Add(time.Minute) }), rotator.ReasonSlotServed, false, true},
		{"a rotation exactly at the slot serves it", with(func(in *rotator.Input) { in.LastRotated = slot }), rotator.ReasonSlotServed, false, true},
		{"an every-schedule slot is served by a rotation less than a period before it", with(func(in *rotator.Input) {
			in.Schedule, in.LastRotated = "@every 1h", slot.Add(-30*time.Minute)
		}), rotator.ReasonSlotServed, false, true},
		{"an open journal resumes even when the slot is served", with(func(in *rotator.Input) {
			in.LastRotated, in.InFlight = slot.Add(time.Minute), true
		}), rotator.ReasonInFlight, true, false},
		{"an open retire makes the run wait", with(func(in *rotator.Input) { in.RetireInFlight = true }), rotator.ReasonRetireInFlight, false, false},
		{"a backoff makes the run wait", with(func(in *rotator.Input) { in.InFlight, in.NextAttemptAt = true, now.Add(time.Minute) }), rotator.ReasonBackoff, false, false},
		{"an orphan makes the run wait", with(func(in *rotator.Input) { in.InFlight, in.Orphaned = true, true }), rotator.ReasonOrphaned, false, false},
		{"a bare retry without a journal has nothing to do", with(func(in *rotator.Input) { in.RunReason, in.Slot = rotator.ReasonRetry, time.Time{} }), rotator.ReasonNothingToResume, false, true},
		{"a max-age run that finds a fresh pair is skipped", with(func(in *rotator.Input) {
			in.RunReason, in.Slot, in.LastRotated = rotator.ReasonMaxAge, time.Time{}, now.Add(-time.Hour)
		}), rotator.ReasonFresh, false, true},
		{"a max-age run of an old pair rotates", with(func(in *rotator.Input) {
			in.RunReason, in.Slot, in.LastRotated = rotator.ReasonMaxAge, time.Time{}, now.Add(-31*24*time.Hour)
		}), rotator.ReasonMaxAge, true, false},
		{"an unmanaged path waits", with(func(in *rotator.Input) { in.Managed = false }), rotator.ReasonNotManaged, false, false},
		{"an unfinished overlap makes the run wait", with(func(in *rotator.Input) { in.PreviousValidUntil = now.Add(time.Hour) }), rotator.ReasonRetiring, false, false},
		{"max age beats an unfinished overlap", with(func(in *rotator.Input) {
			in.PreviousValidUntil, in.LastRotated = now.Add(time.Hour), now.Add(-31*24*time.Hour)
		}), rotator.ReasonMaxAge, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rotator.ScheduledRunChain.Decide(tt.in)
			if got.Reason != tt.wantReason || got.Rotate != tt.wantRotate || got.Skip() != tt.wantSkip {
				t.Errorf("Decide = %s/rotate %v/skip %v (%s), want %s/%v/%v", got.Reason, got.Rotate, got.Skip(), got.Message, tt.wantReason, tt.wantRotate, tt.wantSkip)
			}
		})
	}
	t.Run("the overlap wait never outlasts max age", func(t *testing.T) {
		in := with(func(in *rotator.Input) {
			in.LastRotated, in.PreviousValidUntil = now.Add(-29*24*time.Hour), now.Add(3*24*time.Hour)
		})
		if got, want := rotator.ScheduledRunChain.Decide(in).Next, in.LastRotated.Add(in.MaxAge); !got.Equal(want) {
			t.Errorf("wait until %s, want the max-age deadline %s", got, want)
		}
	})
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
