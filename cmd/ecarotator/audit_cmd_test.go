package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/rotator"
)

var cliTestKey = []byte("cli-test-key-cli-test-key-cli-te")

// knownSecret is planted in the events the fixture writes; it must never
// appear in the file or in any command's output.
const knownSecret = "LEAKCANARY0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF012345"

// auditFixture is a log of two rotations (billing succeeded, payroll
// failed) plus daemon events, written through audit.New like the daemon
// does, and the key file to verify it.
type auditFixture struct {
	dir, log, keyFile, noConfig string
	t0                          time.Time
	fp                          string
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &auditFixture{dir: dir, log: filepath.Join(dir, "audit.log"), keyFile: filepath.Join(dir, "key.b64"),
		noConfig: filepath.Join(dir, "none.yaml"), t0: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	if err := os.WriteFile(fx.keyFile, []byte(base64.StdEncoding.EncodeToString(cliTestKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mac, err := audit.LocalKey(cliTestKey)
	if err != nil {
		t.Fatal(err)
	}
	clock := fx.t0
	l, err := audit.New(context.Background(), audit.Options{File: fx.log, MAC: mac, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	secret := rotator.NewSecret(knownSecret)
	fx.fp = l.Fingerprint(secret)
	sched := rotator.Actor{Kind: rotator.ActorScheduler, Reason: "schedule"}
	alice := rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "INC-7"}
	evs := []rotator.Event{
		{Type: rotator.EventDaemonStarted, Actor: rotator.Actor{Kind: rotator.ActorSystem}},
		{Type: rotator.EventRotationStarted, App: "billing", Org: "prod", ECA: "Billing_ECA", RotationID: "rot-b1", Actor: sched},
		{Type: rotator.EventStepCompleted, App: "billing", Org: "prod", RotationID: "rot-b1", Step: rotator.StepStage, Actor: sched, Outcome: rotator.OutcomeOK, Fingerprint: fx.fp,
			// an engine bug passing the secret in details: redacted by Record
			Details: map[string]string{"consumer_secret": knownSecret}},
		{Type: rotator.EventStepCompleted, App: "billing", Org: "prod", RotationID: "rot-b1", Step: rotator.StepCommit, Actor: sched, Outcome: rotator.OutcomeOK,
			VaultPath: "secret/salesforce/billing", VaultVersion: 4, Fingerprint: fx.fp},
		{Type: rotator.EventRotationSucceeded, App: "billing", Org: "prod", RotationID: "rot-b1", Actor: sched, Outcome: rotator.OutcomeOK, Fingerprint: fx.fp},
		{Type: rotator.EventMFAVerified, App: "payroll", Org: "prod", Actor: alice, Outcome: rotator.OutcomeOK},
		{Type: rotator.EventRotationStarted, App: "payroll", Org: "prod", RotationID: "rot-p1", Actor: alice},
		{Type: rotator.EventStepFailed, App: "payroll", Org: "prod", RotationID: "rot-p1", Step: rotator.StepVerify, Actor: alice, Outcome: rotator.OutcomeFailed, Error: "salesforce: invalid_client"},
		{Type: rotator.EventRotationFailed, App: "payroll", Org: "prod", RotationID: "rot-p1", Step: rotator.StepVerify, Actor: alice, Outcome: rotator.OutcomeFailed, Error: "salesforce: invalid_client"},
		{Type: rotator.EventDaemonStopped, Actor: rotator.Actor{Kind: rotator.ActorSystem}},
	}
	for _, e := range evs {
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx *auditFixture) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	base := []string{"audit", "-c", fx.noConfig}
	return runCLI(t, nil, append(base, args...)...)
}

func (fx *auditFixture) lines(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile(fx.log)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte{'\n'})
}

func (fx *auditFixture) write(t *testing.T, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(fx.log, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifySucceedsOnAnIntactLog(t *testing.T) {
	fx := newAuditFixture(t)
	code, out, errOut := fx.run(t, "verify", "--file", fx.log, "--mac-key-file", fx.keyFile)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{": OK", "records: 10 (seq 1..10)", "MAC: every record checked", "anchor: not checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestAuditVerifyExitsFourAndNamesTheFirstBadRecord(t *testing.T) {
	tests := []struct {
		name   string
		tamper func([][]byte) [][]byte
		want   []string
	}{
		{"a changed byte", func(ls [][]byte) [][]byte {
			ls[4] = bytes.Replace(ls[4], []byte(`"outcome":"ok"`), []byte(`"outcome":"no"`), 1)
			return ls
		}, []string{"line 5", "problem: edited"}},
		{"a deleted line", func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, []string{"line 3 (seq 4)", "problem: gap"}},
		{"two swapped lines", func(ls [][]byte) [][]byte {
			ls[6], ls[7] = ls[7], ls[6]
			return ls
		}, []string{"line 7 (seq 8)", "problem: reordered"}},
		{"a torn last line", func(ls [][]byte) [][]byte {
			return append(ls[:len(ls)-1], ls[3][:40])
		}, []string{"line 11", "problem: torn", "audit repair"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is detected", func(t *testing.T) {
			fx := newAuditFixture(t)
			fx.write(t, tt.tamper(fx.lines(t)))
			code, out, errOut := fx.run(t, "verify", "--file", fx.log, "--mac-key-file", fx.keyFile)
			if code != ExitVerification {
				t.Fatalf("exit %d, want %d\n%s%s", code, ExitVerification, out, errOut)
			}
			for _, want := range append(tt.want, "FAILED", "first bad record: "+fx.log) {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestAuditVerifyWithTheWrongKeyReportsAForgery(t *testing.T) {
	fx := newAuditFixture(t)
	other := filepath.Join(fx.dir, "other.b64")
	os.WriteFile(other, []byte(base64.StdEncoding.EncodeToString([]byte("another-key-another-key-another!"))), 0o600)
	code, out, _ := fx.run(t, "verify", "--file", fx.log, "--mac-key-file", other)
	if code != ExitVerification || !strings.Contains(out, "problem: forged") || !strings.Contains(out, "line 1 (seq 1)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestAuditVerifyNeedsAKeyUnlessToldHashOnly(t *testing.T) {
	fx := newAuditFixture(t)
	if code, _, errOut := fx.run(t, "verify", "--file", fx.log); code != ExitConfig {
		t.Fatalf("without a key: exit %d, want %d (%s)", code, ExitConfig, errOut)
	}
	code, out, _ := fx.run(t, "verify", "--file", fx.log, "--no-mac")
	if code != ExitOK || !strings.Contains(out, "MAC: NOT checked") {
		t.Fatalf("--no-mac: exit %d\n%s", code, out)
	}
}

func TestAuditRepairSealsATornLineThenVerifyPasses(t *testing.T) {
	fx := newAuditFixture(t)
	ls := fx.lines(t)
	fx.write(t, append(ls[:len(ls)-1], ls[2][:30]))
	if code, _, _ := fx.run(t, "repair", "--file", fx.log, "--mac-key-file", fx.keyFile); code != ExitUsage {
		t.Fatalf("repair without --operator: exit %d, want %d", code, ExitUsage)
	}
	code, out, errOut := fx.run(t, "repair", "--file", fx.log, "--mac-key-file", fx.keyFile, "--operator", "bob", "--reason", "INC-9")
	if code != ExitOK || !strings.Contains(out, "sealed the torn line 11") {
		t.Fatalf("repair: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = fx.run(t, "verify", "--file", fx.log, "--mac-key-file", fx.keyFile)
	if code != ExitOK || !strings.Contains(out, "repaired: torn line") {
		t.Fatalf("verify after repair: exit %d\n%s", code, out)
	}
	code, out, _ = fx.run(t, "repair", "--file", fx.log, "--mac-key-file", fx.keyFile, "--operator", "bob", "--reason", "again")
	if code != ExitOK || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("second repair: exit %d\n%s", code, out)
	}
	code, out, _ = fx.run(t, "list", "--file", fx.log, "--event", "audit.repair")
	if code != ExitOK || !strings.Contains(out, "operator:bob") {
		t.Fatalf("list repair: exit %d\n%s", code, out)
	}
}

func TestAuditListFilters(t *testing.T) {
	fx := newAuditFixture(t)
	tests := []struct {
		name string
		args []string
		want []string // seqs in order
	}{
		{"no filter lists every record", nil, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
		{"an app filter keeps that app", []string{"--app", "billing"}, []string{"2", "3", "4", "5"}},
		{"an event filter takes several types", []string{"--event", "rotation.succeeded,rotation.failed"}, []string{"5", "9"}},
		{"an outcome filter keeps failures", []string{"--outcome", "failed"}, []string{"8", "9"}},
		{"an actor filter matches an identity", []string{"--actor", "alice"}, []string{"6", "7", "8", "9"}},
		{"an actor filter matches a kind", []string{"--actor", "system"}, []string{"1", "10"}},
		{"since and until bound the time", []string{"--since", "2026-11-20T09:00:03Z", "--until", "2026-11-20T09:00:05Z"}, []string{"3", "4"}},
		{"an org filter keeps that org", []string{"--org", "prod", "--app", "payroll", "--event", "mfa.verified"}, []string{"6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := fx.run(t, append([]string{"list", "--file", fx.log, "--json"}, tt.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []string
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var r audit.Record
				if err := dec.Decode(&r); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprint(r.Seq))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got seqs %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuditListPrintsATable(t *testing.T) {
	fx := newAuditFixture(t)
	code, out, errOut := fx.run(t, "list", "--file", fx.log, "--app", "payroll")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SEQ", "EVENT", "rotation.failed", "operator:alice", "rot-p1"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "4 record(s)") {
		t.Errorf("stderr %q lacks the count", errOut)
	}
}

func TestAuditListRejectsBadFlags(t *testing.T) {
	fx := newAuditFixture(t)
	for _, args := range [][]string{{"--outcome", "great"}, {"--since", "yesterday"}} {
		if code, _, _ := fx.run(t, append([]string{"list", "--file", fx.log}, args...)...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

func TestAuditShowTellsOneRotationsStory(t *testing.T) {
	fx := newAuditFixture(t)
	code, out, errOut := fx.run(t, "show", "rot-b1", "--file", fx.log)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantOrder := []string{"rotation rot-b1", "app billing", "outcome: succeeded", "rotation.started", "stage", "commit", "vault secret/salesforce/billing v4", "rotation.succeeded"}
	pos := 0
	for _, w := range wantOrder {
		i := strings.Index(out[pos:], w)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", w, out)
		}
		pos += i
	}
	if code, _, _ := fx.run(t, "show", "no-such-rotation", "--file", fx.log); code != ExitRuntime {
		t.Errorf("unknown rotation: exit %d, want %d", code, ExitRuntime)
	}
}

func TestAuditExportWritesJSONAndCSV(t *testing.T) {
	fx := newAuditFixture(t)
	code, out, errOut := fx.run(t, "export", "--file", fx.log, "--format", "json", "--app", "billing")
	if code != ExitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var recs []audit.Record
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 4 || recs[0].Hash == "" {
		t.Fatalf("json export: %v, %d records", err, len(recs))
	}
	code, out, errOut = fx.run(t, "export", "--file", fx.log, "--format", "csv")
	if code != ExitOK {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 11 || rows[0][0] != "seq" || rows[10][2] != "daemon.stopped" {
		t.Fatalf("csv export: %v, %d rows", err, len(rows))
	}
	if code, _, _ := fx.run(t, "export", "--file", fx.log, "--format", "xml"); code != ExitUsage {
		t.Errorf("--format xml: exit %d, want %d", code, ExitUsage)
	}
	code, out, _ = fx.run(t, "export", "--file", fx.log, "--app", "nobody")
	if code != ExitOK || strings.TrimSpace(out) != "[\n]" {
		t.Errorf("empty export: exit %d %q", code, out)
	}
}

// writeReportConfig writes a config with billing (max age 30d) and payroll
// (max age 7d) whose audit.file is the fixture's log.
func writeReportConfig(t *testing.T, fx *auditFixture, apps string) string {
	t.Helper()
	cfg := `vault: {address: "http://127.0.0.1:1"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: x, username: u@x, vault_path: ecarotator/devhubs/prod}
apps:
` + apps + `
audit:
  file: ` + fx.log + `
  mac: {kv_path: ecarotator/audit-key}
`
	p := filepath.Join(fx.dir, "ecarotator.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditReportSummarisesComplianceAndExitsFourWhenPastMaxAge(t *testing.T) {
	fx := newAuditFixture(t)
	both := `  - {name: billing, devhub: prod, eca: B, max_age: 30d}
  - {name: payroll, devhub: prod, eca: P, max_age: 7d}`
	cfg := writeReportConfig(t, fx, both)
	code, out, errOut := runCLI(t, nil, "audit", "report", "-c", cfg, "--at", "2026-11-25")
	if code != ExitVerification {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitVerification, out, errOut)
	}
	for _, want := range []string{"billing", "4.6d", "30.0d", "ok", "payroll", "never", "NEVER ROTATED",
		"compliance: NON-COMPLIANT — 1/2 app(s)", "payroll: no successful rotation on record"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Past billing's max age too.
	code, out, _ = runCLI(t, nil, "audit", "report", "-c", cfg, "--at", "2027-01-01", "--json")
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != ExitVerification || rep.NonCompliant != 2 {
		t.Fatalf("json report: exit %d, %v, %+v", code, err, rep)
	}
	cfg = writeReportConfig(t, fx, `  - {name: billing, devhub: prod, eca: B, max_age: 30d}
  - {name: payroll, devhub: prod, eca: P, disabled: true}`)
	code, out, _ = runCLI(t, nil, "audit", "report", "-c", cfg, "--at", "2026-11-25")
	if code != ExitOK || !strings.Contains(out, "compliance: COMPLIANT — 1/1") || !strings.Contains(out, "disabled") {
		t.Fatalf("compliant report: exit %d\n%s", code, out)
	}
}

func TestAuditReportNeedsAConfig(t *testing.T) {
	fx := newAuditFixture(t)
	if code, _, _ := fx.run(t, "report", "--file", fx.log); code != ExitConfig {
		t.Fatalf("exit %d, want %d", code, ExitConfig)
	}
}

func TestAuditOutputNeverContainsASecret(t *testing.T) {
	fx := newAuditFixture(t)
	b, err := os.ReadFile(fx.log)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(knownSecret)) {
		t.Fatal("the secret is in the log file")
	}
	if !bytes.Contains(b, []byte(fx.fp)) || !bytes.Contains(b, []byte(`"audit_redacted":"consumer_secret"`)) {
		t.Fatal("the fixture lacks the fingerprint or the redaction marker: the test proves nothing")
	}
	cfg := writeReportConfig(t, fx, `  - {name: billing, devhub: prod, eca: B}`)
	runs := [][]string{
		{"audit", "-c", fx.noConfig, "verify", "--file", fx.log, "--mac-key-file", fx.keyFile},
		{"audit", "-c", fx.noConfig, "list", "--file", fx.log},
		{"audit", "-c", fx.noConfig, "list", "--file", fx.log, "--json"},
		{"audit", "-c", fx.noConfig, "show", "rot-b1", "--file", fx.log},
		{"audit", "-c", fx.noConfig, "export", "--file", fx.log, "--format", "json"},
		{"audit", "-c", fx.noConfig, "export", "--file", fx.log, "--format", "csv"},
		{"audit", "-c", cfg, "report", "--at", "2026-11-25", "--log-level", "debug"},
	}
	for _, args := range runs {
		_, out, errOut := runCLI(t, map[string]string{"VAULT_TOKEN": "hvs.audit-token-canary"}, args...)
		if strings.Contains(out+errOut, knownSecret) || strings.Contains(out+errOut, "hvs.audit-token-canary") {
			t.Errorf("%v printed a secret", args)
		}
	}
}
