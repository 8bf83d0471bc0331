package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// allEventTypes is every event the engine and daemon emit.
var allEventTypes = []rotator.EventType{
	rotator.EventRotationStarted, rotator.EventStepCompleted, rotator.EventStepFailed, rotator.EventRotationSucceeded,
	rotator.EventRotationFailed, rotator.EventRotationOrphaned, rotator.EventRotationResumed, rotator.EventPreviousRetired,
	rotator.EventPreviousRevoked, rotator.EventSecretAccessOpened, rotator.EventSecretAccessRestored, rotator.EventDriftDetected,
	rotator.EventForeignStaged, rotator.EventAppAdopted, rotator.EventMFAVerified, rotator.EventMFAFailed,
	rotator.EventMFAEnrolled, rotator.EventMFADisabled, rotator.EventApprovalRequested, rotator.EventApprovalGranted,
	rotator.EventSecretRevealed, rotator.EventConfigLoaded, rotator.EventConfigReloaded, rotator.EventConfigRejected,
	rotator.EventDaemonStarted, rotator.EventDaemonStopped, rotator.EventManualAction,
}

func TestNoSecretReachesTheTrailForAnyEvent(t *testing.T) {
	secrets := map[string]rotator.Secret{
		"new":      rotator.NewSecret("NEWSECRET8F0C1D2E3F405162738495A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5"),
		"previous": rotator.NewSecret("OLDSECRET0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C"),
		"token":    rotator.NewSecret("00D5g000004XyZ!AQ0AQTOKENCANARYxyz"),
		"seed":     rotator.NewSecret("JBSWY3DPEHPK3PXPTOTPSEEDCANARY"),
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	ctx := context.Background()
	for _, typ := range allEventTypes {
		for name, s := range secrets {
			e := rotator.Event{Type: typ, App: "billing", Org: "prod", ECA: "Billing_ECA", ConsumerKey: "3MVG9-key",
				RotationID: "rot-1", Step: rotator.StepStage, Outcome: rotator.OutcomeOK,
				Actor:     rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "incident"},
				VaultPath: "secret/salesforce/billing", VaultVersion: 3,
				Fingerprint: l.Fingerprint(s),
				// What a careless caller might pass: every secret-sounding key
				// is redacted by Record.
				Details: map[string]string{"consumer_secret": s.Reveal(), "previous_consumer_secret": s.Reveal(),
					"access_token": s.Reveal(), "totp_seed": s.Reveal(), "which": name, "secret_value": s.String()},
			}
			if err := l.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte{'\n'}); n != len(allEventTypes)*len(secrets) {
		t.Fatalf("%d lines, want %d", n, len(allEventTypes)*len(secrets))
	}
	for name, s := range secrets {
		if bytes.Contains(b, []byte(s.Reveal())) {
			t.Errorf("the %s secret is in the audit trail", name)
		}
		if !bytes.Contains(b, []byte(l.Fingerprint(s))) {
			t.Errorf("the %s secret's fingerprint is missing", name)
		}
	}
	if _, err := VerifyFile(ctx, path, VerifyOptions{MAC: testMAC(t)}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestFilterMatches(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	r := &Record{Seq: 1, Event: rotator.Event{Type: rotator.EventRotationFailed, Time: t0, App: "billing", Org: "prod",
		RotationID: "r1", Outcome: rotator.OutcomeFailed, Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice"}}}
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"an empty filter matches", Filter{}, true},
		{"the right app matches", Filter{App: "billing"}, true},
		{"another app does not", Filter{App: "payroll"}, false},
		{"another org does not", Filter{Org: "sandbox"}, false},
		{"one of several events matches", Filter{Events: []rotator.EventType{rotator.EventRotationSucceeded, rotator.EventRotationFailed}}, true},
		{"other events do not", Filter{Events: []rotator.EventType{rotator.EventRotationSucceeded}}, false},
		{"the actor kind matches", Filter{Actor: "operator"}, true},
		{"the actor identity matches", Filter{Actor: "alice"}, true},
		{"another actor does not", Filter{Actor: "bob"}, false},
		{"the outcome matches", Filter{Outcome: rotator.OutcomeFailed}, true},
		{"another rotation does not", Filter{RotationID: "r2"}, false},
		{"since is inclusive", Filter{Since: t0}, true},
		{"until is exclusive", Filter{Until: t0}, false},
		{"a later since excludes", Filter{Since: t0.Add(time.Second)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(r); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReportCountsFailuresSinceTheLastSuccessAndManualActions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	l := openLog(t, Options{File: path})
	sched := rotator.Actor{Kind: rotator.ActorScheduler}
	op := rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice"}
	for _, e := range []rotator.Event{
		{Type: rotator.EventRotationFailed, App: "billing", Time: t0, Actor: sched},
		{Type: rotator.EventRotationSucceeded, App: "billing", RotationID: "r2", Time: t0.Add(24 * time.Hour), Actor: op},
		{Type: rotator.EventRotationFailed, App: "billing", Time: t0.Add(48 * time.Hour), Actor: sched},
		{Type: rotator.EventRotationOrphaned, App: "billing", Time: t0.Add(72 * time.Hour), Actor: sched},
		{Type: rotator.EventRotationSucceeded, App: "unconfigured", Time: t0, Actor: sched},
	} {
		if err := l.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	now := t0.Add(10 * 24 * time.Hour)
	rep, err := BuildReport(t.Context(), path, []ReportApp{{Name: "billing", MaxAge: 30 * 24 * time.Hour}, {Name: "payroll", MaxAge: time.Hour}}, now)
	if err != nil {
		t.Fatal(err)
	}
	b := rep.Apps[0]
	if !b.Compliant || b.LastRotation != "r2" || b.Failures != 3 || b.FailuresSince != 2 || b.Manual != 1 || b.Age != 9*24*time.Hour {
		t.Errorf("billing = %+v", b)
	}
	if p := rep.Apps[1]; p.Compliant || p.Reason == "" {
		t.Errorf("payroll = %+v, want non-compliant with a reason", p)
	}
	if rep.Compliant != 1 || rep.NonCompliant != 1 {
		t.Errorf("summary %d/%d", rep.Compliant, rep.NonCompliant)
	}
	rep, _ = BuildReport(t.Context(), path, []ReportApp{{Name: "billing", MaxAge: 24 * time.Hour}}, now)
	if rep.Apps[0].Compliant || !strings.Contains(rep.Apps[0].Reason, "max age") {
		t.Errorf("past max age: %+v", rep.Apps[0])
	}
}

func TestStoryOfCollectsOneRotationInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	for _, e := range append(rotationEvents("billing", "rot-1", "fp1:a"), rotationEvents("payroll", "rot-2", "fp1:b")...) {
		if err := l.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	s, err := StoryOf(t.Context(), path, "rot-2")
	if err != nil {
		t.Fatal(err)
	}
	if s.App != "payroll" || s.Outcome != "succeeded" || len(s.Records) != 11 || s.Records[0].Type != rotator.EventRotationStarted {
		t.Fatalf("story %+v (%d records)", s, len(s.Records))
	}
	if !s.Ended.After(s.Started) {
		t.Error("ended not after started")
	}
}

func TestCSVDefusesSpreadsheetFormulas(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Seq: 1, Event: rotator.Event{Type: rotator.EventManualAction, Error: "=HYPERLINK(\"http://x\")",
		Actor: rotator.Actor{Kind: rotator.ActorOperator, Reason: "+1 urgent"}}}
	if err := w.Write(r); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[1][13]; got != "'=HYPERLINK(\"http://x\")" {
		t.Errorf("error cell %q", got)
	}
	if got := rows[1][11]; got != "'+1 urgent" {
		t.Errorf("reason cell %q", got)
	}
}

func TestScanReportsUnparsableLinesAndKeepsGoing(t *testing.T) {
	path, _ := writtenLog(t, 3)
	lines := readLines(t, path)
	lines[1] = []byte("garbage\n")
	writeLines(t, path, lines)
	var got []uint64
	var skipped []SkippedLine
	err := Scan(t.Context(), path, Filter{}, func(r *Record) error { got = append(got, r.Seq); return nil },
		func(s SkippedLine) { skipped = append(skipped, s) })
	if err != nil || len(got) != 2 || len(skipped) != 1 || skipped[0].Line != 2 {
		t.Fatalf("got %v, skipped %+v, err %v", got, skipped, err)
	}
}
