package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/vault"
)

// testKey is a fixed 32-byte MAC key for unit tests.
var testKey = []byte("0123456789abcdef0123456789abcdef")

func testMAC(t testing.TB) MACer {
	t.Helper()
	m, err := LocalKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeClock advances one second per call.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)} }

func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	if opts.MAC == nil {
		opts.MAC = testMAC(t)
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	l, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// rotationEvents is a full rotation's worth of events for app, as the
// engine emits them.
func rotationEvents(app, rid string, fp string) []rotator.Event {
	actor := rotator.Actor{Kind: rotator.ActorScheduler, Reason: "schedule"}
	base := rotator.Event{App: app, Org: "devhub-prod", ECA: "Billing_ECA", ConsumerKey: "3MVG9-public-key", RotationID: rid, Actor: actor}
	var out []rotator.Event
	add := func(typ rotator.EventType, step rotator.Step, mut func(*rotator.Event)) {
		e := base
		e.Type, e.Step, e.Outcome = typ, step, rotator.OutcomeOK
		if mut != nil {
			mut(&e)
		}
		out = append(out, e)
	}
	add(rotator.EventRotationStarted, "", nil)
	for _, s := range []rotator.Step{rotator.StepLock, rotator.StepPreflight} {
		add(rotator.EventStepCompleted, s, nil)
	}
	add(rotator.EventSecretAccessOpened, rotator.StepExpose, func(e *rotator.Event) { e.Details = map[string]string{"prior": "false"} })
	add(rotator.EventStepCompleted, rotator.StepStage, func(e *rotator.Event) { e.Fingerprint = fp })
	add(rotator.EventStepCompleted, rotator.StepPersist, func(e *rotator.Event) { e.VaultPath = "secret/ecarotator/state/" + app; e.VaultVersion = 3 })
	for _, s := range []rotator.Step{rotator.StepRotate, rotator.StepVerify} {
		add(rotator.EventStepCompleted, s, nil)
	}
	add(rotator.EventStepCompleted, rotator.StepCommit, func(e *rotator.Event) {
		e.VaultPath, e.VaultVersion, e.Fingerprint = "secret/salesforce/"+app, 7, fp
	})
	add(rotator.EventSecretAccessRestored, rotator.StepFinish, nil)
	add(rotator.EventRotationSucceeded, "", func(e *rotator.Event) { e.Fingerprint = fp })
	return out
}

func writeEvents(t testing.TB, l *Log, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e := rotator.Event{Type: rotator.EventStepCompleted, App: fmt.Sprintf("app%d", i%3), RotationID: fmt.Sprintf("r%d", i/10),
			Step: rotator.StepVerify, Actor: rotator.Actor{Kind: rotator.ActorScheduler}, Outcome: rotator.OutcomeOK}
		if err := l.Record(ctx, e); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte{'\n'})
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRecordWritesAChainThatVerifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 25)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.Records != 25 || res.LastSeq != 25 || !res.MACChecked {
		t.Fatalf("got %d records, last seq %d, mac %v; want 25, 25, true", res.Records, res.LastSeq, res.MACChecked)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestEveryLineIsTheCanonicalEncodingOfItsRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	for _, e := range rotationEvents("billing", "rot-1", "fp1:abc") {
		if err := l.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for i, line := range readLines(t, path) {
		if len(line) == 0 {
			continue
		}
		r, err := ParseLine(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		body := AppendCanonical(nil, r)
		if HashCanonical(body) != r.Hash {
			t.Errorf("line %d: re-encoding gives a different hash", i+1)
		}
		if !bytes.HasPrefix(line, body[:len(body)-1]) {
			t.Errorf("line %d is not canonical:\n got %s\nwant %s", i+1, line, body)
		}
	}
}

func TestReopeningContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 5)
	_, _, chain := l.Head()
	l.Close()
	l2 := openLog(t, Options{File: path})
	seq, _, chain2 := l2.Head()
	if seq != 5 || chain2 != chain {
		t.Fatalf("reopened head seq %d chain %q, want 5 %q", seq, chain2, chain)
	}
	writeEvents(t, l2, 5)
	l2.Close()
	if res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)}); err != nil || res.Records != 10 {
		t.Fatalf("verify after reopen: %v (records %v)", err, res)
	}
}

func TestSizeRotationKeepsOneChainAcrossFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, MaxFileBytes: 4096})
	writeEvents(t, l, 60)
	l.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 || files[0] != path+".1" || files[len(files)-1] != path {
		t.Fatalf("files %v: want audit.log.1 … audit.log", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 4096 {
			t.Errorf("%s is %d bytes, over the 4096 limit", f, st.Size())
		}
	}
	// Reopen after rotation: the head comes from the newest file.
	l2 := openLog(t, Options{File: path, MaxFileBytes: 4096})
	writeEvents(t, l2, 3)
	l2.Close()
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Records != 63 {
		t.Fatalf("verify across %d files: %v (records %d)", len(files), err, res.Records)
	}
}

func TestOpenRefusesALastRecordWithAForeignMAC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	other, _ := LocalKey([]byte("ffffffffffffffffffffffffffffffff"))
	l := openLog(t, Options{File: path, MAC: other})
	writeEvents(t, l, 2)
	l.Close()
	_, err := New(t.Context(), Options{File: path, MAC: testMAC(t)})
	if !errors.Is(err, ErrBadTail) {
		t.Fatalf("New = %v, want ErrBadTail", err)
	}
}

func TestRecordFailsClosedAfterAWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path})
	writeEvents(t, l, 1)
	l.file.f.Close() // the disk goes away under the writer
	ev := rotator.Event{Type: rotator.EventDaemonStopped, Actor: rotator.Actor{Kind: rotator.ActorSystem}}
	for i := 0; i < 2; i++ {
		if err := l.Record(t.Context(), ev); !errors.Is(err, ErrNotDurable) {
			t.Fatalf("Record #%d = %v, want ErrNotDurable", i, err)
		}
	}
}

func TestRecordRejectsAnEventWithoutType(t *testing.T) {
	l := openLog(t, Options{File: filepath.Join(t.TempDir(), "audit.log")})
	if err := l.Record(t.Context(), rotator.Event{}); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("got %v, want ErrInvalidEvent", err)
	}
}

func TestRecordAfterCloseIsRefused(t *testing.T) {
	l := openLog(t, Options{File: filepath.Join(t.TempDir(), "audit.log")})
	l.Close()
	err := l.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStopped})
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrNotDurable) {
		t.Fatalf("got %v, want ErrClosed and ErrNotDurable", err)
	}
}

// failingLog always fails to record.
type failingLog struct{ n int }

func (f *failingLog) Record(context.Context, rotator.Event) error {
	f.n++
	return ErrNotDurable
}
func (f *failingLog) Fingerprint(rotator.Secret) string { return "fp1:x" }

func TestFailOpenSwallowsErrorsButStillTries(t *testing.T) {
	inner := &failingLog{}
	l := FailOpen(inner, nil)
	if err := l.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStarted}); err != nil {
		t.Fatalf("FailOpen returned %v", err)
	}
	if inner.n != 1 || l.Fingerprint(rotator.NewSecret("s")) != "fp1:x" {
		t.Fatalf("inner called %d times", inner.n)
	}
}

func TestTimeComesFromTheInjectedClockWhenUnset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	clk := newClock()
	l := openLog(t, Options{File: path, Now: clk.Now})
	writeEvents(t, l, 1)
	lines := readLines(t, path)
	r, err := ParseLine(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(clk.t) {
		t.Fatalf("time %v, want %v", r.Time, clk.t)
	}
}

func TestDetailsUnderSecretKeysAreRedacted(t *testing.T) {
	tests := []struct {
		name, key, value string
		redacted         bool
	}{
		{"a consumer secret is redacted", "consumer_secret", "S3CR3T", true},
		{"a private key is redacted", "private_key_pem", "-----BEGIN", true},
		{"a bare token is redacted", "token", "00Dxx!AQ", true},
		{"a fingerprint under a secret key is kept", "secret_fp", "fp1:abc", false},
		{"a token URL is kept", "token_url", "https://x.my.salesforce.com/services/oauth2/token", false},
		{"a prior setting is kept", "prior", "false", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := map[string]string{tt.key: tt.value}
			e := sanitize(rotator.Event{Details: in})
			got := e.Details[tt.key]
			if tt.redacted && (got != "<redacted>" || e.Details["audit_redacted"] != tt.key) {
				t.Errorf("got %q (%q), want redacted", got, e.Details["audit_redacted"])
			}
			if !tt.redacted && got != tt.value {
				t.Errorf("got %q, want %q kept", got, tt.value)
			}
			if in[tt.key] != tt.value {
				t.Error("caller's map was modified")
			}
		})
	}
}

func TestFingerprintIsKeyedStableAndNeverTheSecret(t *testing.T) {
	l := openLog(t, Options{File: filepath.Join(t.TempDir(), "audit.log")})
	s := rotator.NewSecret("8F0C1D2E3F405162738495A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5D6E7F80")
	fp := l.Fingerprint(s)
	if !strings.HasPrefix(fp, "fp1:") || len(fp) != 4+22 || strings.Contains(fp, s.Reveal()[:8]) {
		t.Fatalf("fingerprint %q", fp)
	}
	if l.Fingerprint(s) != fp {
		t.Error("not stable")
	}
	other, _ := LocalKey([]byte("ffffffffffffffffffffffffffffffff"))
	k, _ := other.FingerprintKey(t.Context())
	if FingerprintWith(k, s.Reveal()) == fp {
		t.Error("fingerprint does not depend on the key")
	}
	if l.Fingerprint(rotator.Secret{}) != "" {
		t.Error("empty secret should have an empty fingerprint")
	}
}

func TestOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"a missing MAC is rejected", Options{File: "x"}},
		{"no sink is rejected", Options{MAC: testMAC(t)}},
		{"a Vault sink without a client is rejected", Options{MAC: testMAC(t), SinkPath: "a"}},
		{"checkpoints without a client are rejected", Options{MAC: testMAC(t), File: "x", CheckpointPath: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(t.Context(), tt.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
	if _, err := LocalKey([]byte("short")); !errors.Is(err, ErrShortKey) {
		t.Errorf("short key: %v", err)
	}
}

func TestNewFailsClosedWhenTheAnchorCannotBeRead(t *testing.T) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1" // nothing listens: Vault is down
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(t.Context(), Options{File: path, MAC: testMAC(t), Vault: vault.FromAPI(c, ""), CheckpointPath: "cp"})
	if err == nil {
		l.Close()
		t.Fatal("New opened a log whose anchor it could not read")
	}
}
