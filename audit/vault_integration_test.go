//go:build integration

package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	vaultapi "github.com/hashicorp/vault/api"
)

func vaultEvent(writer string, i int) rotator.Event {
	return rotator.Event{Type: rotator.EventStepCompleted, App: "billing", Step: rotator.StepVerify,
		RotationID: fmt.Sprintf("%s-%d", writer, i), Actor: rotator.Actor{Kind: rotator.ActorScheduler}, Outcome: rotator.OutcomeOK}
}

func TestTwoWritersOnTheVaultSinkProduceOneValidChain(t *testing.T) {
	srv := vaulttest.Start(t)
	const perWriter = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		// Each writer has its own client and Log, like two replicas.
		l := openLog(t, Options{Vault: gw(srv.Client(t)), SinkPath: "ecarotator/audit"})
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if err := l.Record(context.Background(), vaultEvent(name, i)); err != nil {
					errs <- err
					return
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Record: %v", err)
	}
	res, err := VerifyVault(t.Context(), gw(srv.Client(t)), "secret", "ecarotator/audit", VerifyOptions{MAC: testMAC(t)})
	if err != nil {
		t.Fatalf("VerifyVault: %v", err)
	}
	if res.Records != 2*perWriter {
		t.Fatalf("chain has %d records, want %d", res.Records, 2*perWriter)
	}
	h, err := readVaultHead(t.Context(), gw(srv.Client(t)), "secret", "ecarotator/audit")
	if err != nil || h.seq != 2*perWriter || h.hash != res.Head {
		t.Fatalf("head %+v (%v), want seq %d hash %s", h, err, 2*perWriter, res.Head)
	}
}

func TestAWriterThatCrashedBeforeMovingTheHeadDoesNotStallTheChain(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	l := openLog(t, Options{Vault: gw(c), SinkPath: "audit"})
	for i := 0; i < 3; i++ {
		if err := l.Record(t.Context(), vaultEvent("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Replica b writes records/4 and dies before advancing head.
	h, _ := readVaultHead(t.Context(), gw(c), "secret", "audit")
	r := Record{V: SchemaVersion, Seq: h.seq + 1, PrevHash: h.hash, Event: vaultEvent("b", 0)}
	line, err := encodeLine(nil, &r, func(s string) (string, error) {
		m, err := testMAC(t).Sign(t.Context(), []string{s})
		return m[0], err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(t.Context(), "audit/records/4", map[string]any{"line": string(line)}, vaultapi.WithCheckAndSet(0)); err != nil {
		t.Fatal(err)
	}
	// A fresh replica starts from the stale head.
	l2 := openLog(t, Options{Vault: gw(c), SinkPath: "audit"})
	if err := l2.Record(t.Context(), vaultEvent("c", 0)); err != nil {
		t.Fatalf("Record after a crashed writer: %v", err)
	}
	res, err := VerifyVault(t.Context(), gw(c), "secret", "audit", VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Records != 5 {
		t.Fatalf("VerifyVault: %v (records %d), want 5", err, res.Records)
	}
}

func TestVerifyVaultDetectsADeletedRecord(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	l := openLog(t, Options{Vault: gw(c), SinkPath: "audit"})
	for i := 0; i < 6; i++ {
		if err := l.Record(t.Context(), vaultEvent("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.KVv2("secret").DeleteMetadata(t.Context(), "audit/records/6"); err != nil {
		t.Fatal(err)
	}
	_, err := VerifyVault(t.Context(), gw(c), "secret", "audit", VerifyOptions{MAC: testMAC(t)})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindTruncated {
		t.Fatalf("VerifyVault = %v, want truncated", err)
	}
}

func TestTheAnchorInVaultDetectsACutTail(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, Vault: gw(c), CheckpointPath: "ecarotator/audit/checkpoint", CheckpointEvery: 5})
	writeEvents(t, l, 12)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	seq, _, _ := l.Head()
	a, _, err := ReadAnchor(t.Context(), gw(c), "secret", "ecarotator/audit/checkpoint", DefaultAnchorID(path))
	if err != nil || a == nil || a.Seq != seq-1 {
		t.Fatalf("anchor %+v (%v), want seq %d (the record before the final checkpoint record)", a, err, seq-1)
	}
	opts := VerifyOptions{MAC: testMAC(t), Sig: MACSigner(testMAC(t)), Anchor: a}
	if _, err := VerifyFile(t.Context(), path, opts); err != nil {
		t.Fatalf("intact log: %v", err)
	}
	writeLines(t, path, readLines(t, path)[:8])
	_, err = VerifyFile(t.Context(), path, opts)
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindTruncated {
		t.Fatalf("cut log: %v, want truncated", err)
	}
}

func enableTransit(t *testing.T, c *vaultapi.Client, key string) {
	t.Helper()
	if err := c.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	if _, err := c.Logical().Write("transit/keys/"+key, map[string]any{"type": "hmac", "key_size": 32}); err != nil {
		// older servers: an aes key also supports hmac
		if _, err := c.Logical().Write("transit/keys/"+key, nil); err != nil {
			t.Fatalf("create transit key: %v", err)
		}
	}
	if _, err := c.Logical().Write("transit/keys/"+key+"-sign", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatalf("create transit signing key: %v", err)
	}
}

func TestTransitMACSignsVerifiesAndSurvivesKeyRotation(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	enableTransit(t, c, "ecarotator-audit")
	mac := Transit(gw(c), "transit", "ecarotator-audit")
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, MAC: mac})
	writeEvents(t, l, 5)
	fp := l.Fingerprint(rotator.NewSecret("s3cr3t"))
	if _, err := c.Logical().Write("transit/keys/ecarotator-audit/rotate", nil); err != nil {
		t.Fatalf("rotate transit key: %v", err)
	}
	l2 := openLog(t, Options{File: path, MAC: mac}) // reopens: checks the last MAC via transit
	writeEvents(t, l2, 5)
	if got := l2.Fingerprint(rotator.NewSecret("s3cr3t")); got != fp {
		t.Errorf("fingerprint changed after key rotation: %s != %s", got, fp)
	}
	l.Close()
	l2.Close()
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: mac, BatchSize: 3})
	if err != nil || res.Records != 10 {
		t.Fatalf("verify with transit: %v (%d records)", err, res.Records)
	}
	lines := readLines(t, path)
	forge(t, lines, 4, func(r *Record) { r.App = "x" }, testMAC(t))
	writeLines(t, path, lines)
	_, err = VerifyFile(t.Context(), path, VerifyOptions{MAC: mac})
	var te *TamperError
	if !errors.As(err, &te) || te.Kind != KindForged || te.Line != 5 {
		t.Fatalf("forged record: %v", err)
	}
}

func TestEnsureKVKeyCreatesOnceAndThenReads(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	if _, err := LoadKVKey(t.Context(), gw(c), "secret", "ecarotator/audit-key"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("LoadKVKey before creation: %v", err)
	}
	k1, err := EnsureKVKey(t.Context(), gw(c), "secret", "ecarotator/audit-key")
	if err != nil || len(k1) != 32 {
		t.Fatalf("EnsureKVKey: %v (%d bytes)", err, len(k1))
	}
	k2, err := EnsureKVKey(t.Context(), gw(c), "secret", "ecarotator/audit-key")
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second EnsureKVKey returned a different key (%v)", err)
	}
}

func BenchmarkVaultSinkAppend(b *testing.B) {
	srv := vaulttest.Start(b)
	l := openLog(b, Options{Vault: gw(srv.Client(b)), SinkPath: "bench/audit"})
	e := vaultEvent("bench", 0)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// tokenFor writes the policy in configs/policies/<name>.hcl and returns a
// client whose token holds only that policy.
func tokenFor(t *testing.T, srv *vaulttest.Server, name string) *vaultapi.Client {
	t.Helper()
	root := srv.Client(t)
	hcl, err := os.ReadFile(filepath.Join("..", "configs", "policies", name+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy(name, string(hcl)); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
	sec, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c
}

func TestTheDaemonPolicySufficesForTransitVaultSinkAndAnchors(t *testing.T) {
	srv := vaulttest.Start(t)
	enableTransit(t, srv.Client(t), "ecarotator-audit")
	daemon := tokenFor(t, srv, "ecarotator")
	mac := Transit(gw(daemon), "transit", "ecarotator-audit")
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := Options{File: path, MAC: mac, Signer: TransitSigner(gw(daemon), "transit", "ecarotator-audit-sign"), Vault: gw(daemon),
		SinkPath: "ecarotator/audit", CheckpointPath: "ecarotator/audit/checkpoint", CheckpointEvery: 2}
	l := openLog(t, opts)
	writeEvents(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatalf("Close (final anchor): %v", err)
	}
	// Reopening checks the last MAC with transit/hmac only.
	l2 := openLog(t, opts)
	writeEvents(t, l2, 1)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	seq, _, _ := l2.Head()
	a, _, err := ReadAnchor(t.Context(), gw(daemon), "secret", "ecarotator/audit/checkpoint", DefaultAnchorID(path))
	if err != nil || a == nil || a.Seq != seq-1 || a.Mode != ModeEd25519 {
		t.Fatalf("anchor %+v, %v", a, err)
	}
}

func TestTheAuditorPolicyVerifiesATransitTrailItCannotWrite(t *testing.T) {
	srv := vaulttest.Start(t)
	enableTransit(t, srv.Client(t), "ecarotator-audit")
	daemon := tokenFor(t, srv, "ecarotator")
	mac := Transit(gw(daemon), "transit", "ecarotator-audit")
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, MAC: mac, Signer: TransitSigner(gw(daemon), "transit", "ecarotator-audit-sign"), Vault: gw(daemon),
		SinkPath: "ecarotator/audit", CheckpointPath: "ecarotator/audit/checkpoint"})
	writeEvents(t, l, 5)
	l.Close()

	auditor := tokenFor(t, srv, "auditor")
	amac := Transit(gw(auditor), "transit", "ecarotator-audit") // verify only
	if _, err := VerifyVault(t.Context(), gw(auditor), "secret", "ecarotator/audit", VerifyOptions{MAC: amac}); err != nil {
		t.Fatalf("auditor verifies the Vault chain: %v", err)
	}
	pk, err := ReadTransitPublicKeys(t.Context(), gw(auditor), "transit", "ecarotator-audit-sign")
	if err != nil {
		t.Fatalf("auditor reads the public key: %v", err)
	}
	a, _, err := ReadAnchor(t.Context(), gw(auditor), "secret", "ecarotator/audit/checkpoint", DefaultAnchorID(path))
	if err != nil || a == nil {
		t.Fatalf("auditor reads the anchor: %v", err)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: amac, Sig: pk, Anchor: a})
	if err != nil || res.Anchor == nil || res.Signatures == 0 {
		t.Fatalf("auditor verifies the file: %v (%+v)", err, res)
	}
	if _, err := amac.Sign(t.Context(), []string{"x"}); err == nil {
		t.Fatal("the auditor computed a transit MAC")
	}
	if _, err := TransitSigner(gw(auditor), "transit", "ecarotator-audit-sign").SignHead(t.Context(), "x"); err == nil {
		t.Fatal("the auditor signed a head")
	}
	if err := l.Record(t.Context(), vaultEvent("x", 0)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	k, _ := LocalKey(testKey)
	al := openLog(t, Options{MAC: k, Vault: gw(auditor), SinkPath: "ecarotator/audit"})
	if err := al.Record(t.Context(), vaultEvent("auditor", 0)); err == nil {
		t.Fatal("the auditor could append to the Vault trail")
	}
}

func TestRecordFailsClosedWhenTheVaultSinkIsDown(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{File: path, Vault: gw(c), SinkPath: "audit"})
	if err := l.Record(t.Context(), vaultEvent("a", 0)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err := l.Record(t.Context(), vaultEvent("a", 1))
	if !errors.Is(err, ErrNotDurable) {
		t.Fatalf("Record with Vault down = %v, want ErrNotDurable", err)
	}
	// What FailOpen does with it: logged, swallowed.
	if err := FailOpen(l, nil).Record(t.Context(), vaultEvent("a", 2)); err != nil {
		t.Fatalf("FailOpen = %v", err)
	}
}

// BenchmarkVaultSinkAppendTwoWriters measures the shared chain's total rate
// when two replicas append at once (check-and-set conflicts included).
func BenchmarkVaultSinkAppendTwoWriters(b *testing.B) {
	srv := vaulttest.Start(b)
	logs := []*Log{
		openLog(b, Options{Vault: gw(srv.Client(b)), SinkPath: "bench/audit2"}),
		openLog(b, Options{Vault: gw(srv.Client(b)), SinkPath: "bench/audit2"}),
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for w, l := range logs {
		wg.Add(1)
		go func(w int, l *Log) {
			defer wg.Done()
			for i := w; i < b.N; i += len(logs) {
				if err := l.Record(context.Background(), vaultEvent("bench", i)); err != nil {
					b.Error(err)
					return
				}
			}
		}(w, l)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// gw is the Vault gateway (the vault adapter) over a test client.
func gw(c *vaultapi.Client) Vault { return vault.FromAPI(c, "secret") }
