package scheduler

import (
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s unavailable: %v", name, err)
	}
	return loc
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestNextSlot(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		after    time.Time
		want     time.Time
	}{
		{"a five-field schedule gives the next matching minute", "30 2 * * 1", utc(2026, 11, 26, 0, 0), utc(2026, 11, 30, 2, 30)},
		{"a descriptor is accepted", "@daily", utc(2026, 11, 26, 13, 0), utc(2026, 11, 27, 0, 0)},
		{"the result is strictly after the given time", "0 * * * *", utc(2026, 11, 26, 13, 0), utc(2026, 11, 26, 14, 0)},
		{"CRON_TZ= places the slot on that zone's wall clock", "CRON_TZ=Europe/Paris 0 9 * * *", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 8, 0)},
		{"TZ= is accepted too", "TZ=America/New_York 0 9 * * *", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 14, 0)},
		{"@every is a constant delay", "@every 90m", utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 1, 30)},
		{"a slot in the hour skipped by spring forward runs once, normalised to 03:30 CEST", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 30)},
		{"the day after spring forward is back to 02:30 CEST", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)},
		{"the first 02:30 of a fall-back night is the slot", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30)},
		{"the repeated 02:30 of a fall-back night is skipped", "CRON_TZ=Europe/Paris 30 2 * * *", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)},
	}
	mustLoc(t, "Europe/Paris")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NextSlot(tt.schedule, tt.after)
			if err != nil {
				t.Fatalf("NextSlot(%q, %s): %v", tt.schedule, tt.after, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("NextSlot(%q, %s) = %s, want %s", tt.schedule, tt.after, got.UTC(), tt.want)
			}
		})
	}
}

func TestNextSlotErrors(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		want     error
	}{
		{"a schedule that never matches has no slot", "0 0 30 2 *", ErrNoSlot},
		{"a six-field schedule is rejected", "0 0 0 * * *", nil},
		{"an unknown descriptor is rejected", "@fortnightly", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NextSlot(tt.schedule, utc(2026, 1, 1, 0, 0))
			if err == nil {
				t.Fatalf("NextSlot(%q) succeeded, want an error", tt.schedule)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("NextSlot(%q) = %v, want %v", tt.schedule, err, tt.want)
			}
		})
	}
}

// TestNextSlotDSTOncePerDay walks a daily 02:30 Paris schedule through both
// 2026 changes and checks every local date gets exactly one slot.
func TestNextSlotDSTOncePerDay(t *testing.T) {
	paris := mustLoc(t, "Europe/Paris")
	for _, span := range []struct {
		name       string
		start, end time.Time
	}{
		{"spring forward week", utc(2026, 3, 25, 0, 0), utc(2026, 4, 2, 0, 0)},
		{"fall back week", utc(2026, 10, 22, 0, 0), utc(2026, 10, 30, 0, 0)},
	} {
		t.Run(span.name, func(t *testing.T) {
			perDay := map[string]int{}
			cur := span.start
			for {
				n, err := NextSlot("CRON_TZ=Europe/Paris 30 2 * * *", cur)
				if err != nil {
					t.Fatal(err)
				}
				if n.After(span.end) {
					break
				}
				perDay[n.In(paris).Format(time.DateOnly)]++
				cur = n
			}
			if len(perDay) != 8 {
				t.Errorf("got slots on %d days, want 8: %v", len(perDay), perDay)
			}
			for day, n := range perDay {
				if n != 1 {
					t.Errorf("%s has %d slots, want 1", day, n)
				}
			}
		})
	}
}

func TestDue(t *testing.T) {
	// Weekly on Monday 02:00 UTC; 2026-11-23 and 2026-11-30 are Mondays.
	const weekly = "0 2 * * 1"
	mon := utc(2026, 11, 23, 2, 0)
	next := utc(2026, 11, 30, 2, 0)
	start := func(slot time.Time) time.Time { return rotator.SlotStart("billing", slot, time.Hour) }
	// inWindow is the plan for slot when its window is open at now: its
	// stable start, due once that has come (CatchUp when it passed).
	inWindow := func(slot, now time.Time, skipped time.Time) Decision {
		at := start(slot)
		d := Decision{Due: !at.After(now), At: at, Reason: ReasonScheduled, Slot: slot, Skipped: skipped}
		if at.Before(now) {
			d.Reason = ReasonCatchUp
		}
		return d
	}
	base := DueInput{App: "billing", Schedule: weekly, Window: time.Hour, MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-7 * 24 * time.Hour)}
	with := func(f func(*DueInput)) DueInput { in := base; f(&in); return in }
	endOfWindow := mon.Add(time.Hour - time.Nanosecond)
	tests := []struct {
		name string
		in   DueInput
		want Decision
	}{
		{
			name: "before the slot the run is planned at the app's stable start inside the window",
			in:   with(func(in *DueInput) { in.Now = mon.Add(-time.Hour) }),
			want: Decision{At: start(mon), Reason: ReasonScheduled, Slot: mon},
		},
		{
			name: "after downtime a missed slot whose window is open runs once",
			in:   with(func(in *DueInput) { in.Now = endOfWindow }),
			want: inWindow(mon, endOfWindow, time.Time{}),
		},
		{
			name: "another app of the same slot starts at its own stable offset",
			in:   with(func(in *DueInput) { in.Now, in.App = mon.Add(-time.Hour), "payroll" }),
			want: Decision{At: rotator.SlotStart("payroll", mon, time.Hour), Reason: ReasonScheduled, Slot: mon},
		},
		{
			name: "a missed slot whose window closed waits for the next slot when max age is not exceeded",
			in:   with(func(in *DueInput) { in.Now = mon.Add(5 * time.Hour) }),
			want: Decision{At: start(next), Reason: ReasonScheduled, Slot: next, Skipped: mon},
		},
		{
			name: "several missed slots give one catch-up run for the latest",
			in: with(func(in *DueInput) {
				in.Now, in.Schedule, in.LastRotation = utc(2026, 11, 26, 2, 59), "0 2 * * *", utc(2026, 11, 20, 2, 0)
			}),
			want: inWindow(utc(2026, 11, 26, 2, 0), utc(2026, 11, 26, 2, 59), utc(2026, 11, 25, 2, 0)),
		},
		{
			name: "a missed slot whose window closed is due since the max-age deadline when max age is exceeded",
			in:   with(func(in *DueInput) { in.Now, in.MaxAge = mon.Add(5*time.Hour), 7*24*time.Hour }),
			want: Decision{Due: true, At: mon, Reason: ReasonMaxAge},
		},
		{
			name: "max age beats a far slot",
			in:   DueInput{App: "billing", Now: mon.Add(time.Hour), Schedule: "@yearly", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-31 * 24 * time.Hour)},
			want: Decision{Due: true, At: mon.Add(-24 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "the max-age deadline is planned when it comes before the next slot",
			in:   DueInput{App: "billing", Now: mon.Add(time.Hour), Schedule: "@yearly", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-20 * 24 * time.Hour)},
			want: Decision{At: mon.Add(10 * 24 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "a slot already run is not run again",
			in:   with(func(in *DueInput) { in.Now, in.LastSlot = mon.Add(10*time.Minute), mon }),
			want: Decision{At: start(next), Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "a rotation after the slot (rotate now) serves it",
			in:   with(func(in *DueInput) { in.Now, in.LastRotation = mon.Add(30*time.Minute), mon.Add(5*time.Minute) }),
			want: Decision{At: start(next), Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "unknown history waits for the next slot",
			in:   with(func(in *DueInput) { in.Now, in.LastRotation = mon.Add(10*time.Minute), time.Time{} }),
			want: Decision{At: start(next), Reason: ReasonScheduled, Slot: next},
		},
		{
			name: "a schedule with no further slot still plans the max-age deadline",
			in:   DueInput{App: "billing", Now: mon, Schedule: "0 0 30 2 *", MaxAge: 30 * 24 * time.Hour, LastRotation: mon.Add(-20 * 24 * time.Hour)},
			want: Decision{At: mon.Add(10 * 24 * time.Hour), Reason: ReasonMaxAge},
		},
		{
			name: "an invalid schedule never runs",
			in:   DueInput{App: "billing", Now: mon, Schedule: "not cron"},
			want: Decision{Reason: ReasonInvalidSchedule},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Due(tt.in)
			got.Message = ""
			if got != tt.want {
				t.Errorf("Due =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// TestDueCatchUpRunsOnce replays what the loop does after a long downtime:
// run when due, record the slot, ask again. Only one run may come out.
func TestDueCatchUpRunsOnce(t *testing.T) {
	in := DueInput{
		App: "billing", Now: utc(2026, 11, 26, 2, 15).Add(time.Minute - time.Nanosecond), Schedule: "*/5 * * * *", Window: time.Minute,
		MaxAge: 30 * 24 * time.Hour, LastRotation: utc(2026, 11, 24, 0, 0),
	}
	runs := 0
	for range 50 {
		d := Due(in)
		if !d.Due {
			break
		}
		runs++
		in.LastSlot, in.LastRotation = d.Slot, in.Now
	}
	if runs != 1 {
		t.Errorf("got %d catch-up runs, want 1", runs)
	}
}
