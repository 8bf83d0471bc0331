//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	vaultapi "github.com/hashicorp/vault/api"
)

// vaultAuditSetup starts a real Vault with a KV MAC key, writes a config
// pointing at it, and returns the config path, the env and the MAC.
func vaultAuditSetup(t *testing.T, extraAudit string) (cfgPath, logPath string, env map[string]string, mac audit.MACer, c *vaultapi.Client) {
	t.Helper()
	srv := vaulttest.Start(t)
	c = srv.Client(t)
	key, err := audit.EnsureKVKey(t.Context(), gwv(c), "secret", "ecarotator/audit-key")
	if err != nil {
		t.Fatal(err)
	}
	if mac, err = audit.LocalKey(key); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath = filepath.Join(dir, "audit.log")
	cfg := `vault: {address: "` + srv.Addr + `"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: x, username: u@x, vault_path: ecarotator/devhubs/prod}
apps:
  - {name: billing, devhub: prod, eca: B}
audit:
  file: ` + logPath + `
  mac: {kv_path: ecarotator/audit-key}
` + extraAudit
	cfgPath = filepath.Join(dir, "ecarotator.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The auditor's token and address come from the environment.
	env = map[string]string{"VAULT_TOKEN": srv.Token, "VAULT_ADDR": srv.Addr}
	return cfgPath, logPath, env, mac, c
}

func TestAuditFingerprintMatchesTheLoggedFingerprintOfThatVersion(t *testing.T) {
	cfgPath, logPath, env, mac, c := vaultAuditSetup(t, "")
	kv := c.KVv2("secret")
	secrets := []string{"FIRST-SECRET-0123456789abcdef0123456789abcdef", "SECOND-SECRET-0123456789abcdef0123456789abcd"}
	for _, s := range secrets {
		if _, err := kv.Put(t.Context(), "salesforce/billing", map[string]any{"consumer_key": "3MVG9-key", "consumer_secret": s}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := audit.New(t.Context(), audit.Options{File: logPath, MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	logged := l.Fingerprint(rotator.NewSecret(secrets[0]))
	if err := l.Record(t.Context(), rotator.Event{Type: rotator.EventRotationSucceeded, App: "billing", Fingerprint: logged,
		VaultPath: "secret/salesforce/billing", VaultVersion: 1, Actor: rotator.Actor{Kind: rotator.ActorScheduler}}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	code, out, errOut := runCLI(t, env, "audit", "fingerprint", "billing", "--version", "1", "-c", cfgPath)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "consumer_secret fingerprint: "+logged) || !strings.Contains(out, "version 1") {
		t.Fatalf("version 1 output lacks the logged fingerprint %s:\n%s", logged, out)
	}
	code, out, _ = runCLI(t, env, "audit", "fingerprint", "billing", "-c", cfgPath)
	if code != ExitOK || strings.Contains(out, logged) || !strings.Contains(out, "version 2") {
		t.Fatalf("current version: exit %d\n%s", code, out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatal("fingerprint printed a secret")
		}
	}
	if code, _, _ := runCLI(t, env, "audit", "fingerprint", "nobody", "-c", cfgPath); code != ExitUsage {
		t.Errorf("unknown app: exit %d, want %d", code, ExitUsage)
	}
}

func TestAuditVerifyInLabModeUsesTheKVKeyAndTheAnchor(t *testing.T) {
	cfgPath, logPath, env, mac, c := vaultAuditSetup(t, "  checkpoint_path: ecarotator/audit/checkpoint\n")
	l, err := audit.New(t.Context(), audit.Options{File: logPath, MAC: mac, Vault: gwv(c),
		CheckpointPath: "ecarotator/audit/checkpoint", CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := l.Record(t.Context(), rotator.Event{Type: rotator.EventStepCompleted, App: "billing", Actor: rotator.Actor{Kind: rotator.ActorScheduler}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "audit", "verify", "-c", cfgPath)
	if code != ExitOK || !strings.Contains(out, "anchor: file-") || !strings.Contains(out, "WEAKER lab mode") {
		t.Fatalf("intact: exit %d\n%s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(logPath)
	lines := bytes.SplitAfter(b, []byte{'\n'})
	os.WriteFile(logPath, bytes.Join(lines[:7], nil), 0o600)
	code, out, _ = runCLI(t, env, "audit", "verify", "-c", cfgPath)
	if code != ExitVerification || !strings.Contains(out, "problem: truncated") {
		t.Fatalf("cut tail: exit %d\n%s", code, out)
	}
}

func TestAuditVerifyOfTheVaultSink(t *testing.T) {
	cfgPath, _, env, mac, c := vaultAuditSetup(t, "  vault_sink: {enabled: true, path: ecarotator/audit}\n")
	l, err := audit.New(context.Background(), audit.Options{MAC: mac, Vault: gwv(c), SinkPath: "ecarotator/audit", Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := l.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStarted, Actor: rotator.Actor{Kind: rotator.ActorSystem}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	code, out, errOut := runCLI(t, env, "audit", "verify", "--vault", "-c", cfgPath)
	if code != ExitOK || !strings.Contains(out, "records: 5") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// Replace record 3 with a record forged under another key.
	other, _ := audit.LocalKey([]byte("another-key-another-key-another!"))
	l2, err := audit.New(t.Context(), audit.Options{MAC: other, Vault: gwv(c), SinkPath: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l2.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStarted, Actor: rotator.Actor{Kind: rotator.ActorSystem}, Time: time.Unix(0, 0)})
	}
	sec, err := c.KVv2("secret").Get(t.Context(), "forged/records/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(t.Context(), "ecarotator/audit/records/1", sec.Data); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, env, "audit", "verify", "--vault", "-c", cfgPath)
	if code != ExitVerification || !strings.Contains(out, "problem: forged") {
		t.Fatalf("forged vault record: exit %d\n%s", code, out)
	}
}

func TestAuditVerifyUsesTheTransitKeysWhenTheConfigNamesNone(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	cfgPath := filepath.Join(dir, "ecarotator.yaml")
	cfg := `vault: {address: "` + srv.Addr + `"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: x, username: u@x, vault_path: ecarotator/devhubs/prod}
apps:
  - {name: billing, devhub: prod, eca: B}
audit:
  file: ` + logPath + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VAULT_TOKEN": srv.Token}
	if code, _, _ := runCLI(t, env, "audit", "verify", "-c", cfgPath, "--file", logPath); code != ExitRuntime {
		t.Fatalf("before the transit keys exist: exit %d, want %d", code, ExitRuntime)
	}
	// What an administrator does once: the two transit keys.
	if err := c.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/ecarotator-audit", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/ecarotator-audit-sign", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatal(err)
	}
	mac, err := wire.AuditMAC(t.Context(), gwv(c), "secret", config.AuditMAC{}, true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(t.Context(), audit.Options{File: logPath, MAC: mac, Signer: wire.AuditSigner(gwv(c), config.AuditMAC{}, mac),
		Vault: gwv(c), CheckpointPath: "ecarotator/audit/checkpoint"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStarted, Actor: rotator.Actor{Kind: rotator.ActorSystem}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	code, out, errOut := runCLI(t, env, "audit", "verify", "-c", cfgPath)
	if code != ExitOK || !strings.Contains(out, "ed25519") || !strings.Contains(out, "anchor: file-") || strings.Contains(out, "WEAKER") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// gwv is the Vault gateway (the vault adapter) over a test client.
func gwv(c *vaultapi.Client) *vault.Client { return vault.FromAPI(c, "secret") }
