//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
	vaultapi "github.com/hashicorp/vault/api"
)

// The security review's audit-trail attacks (H1, H2, M4), replayed on a
// real Vault with the shipped policies, each now failing.

// rotateWithRuntime runs one scheduled rotation of app through the same
// wiring as the daemon (wire.New: transit MAC, ed25519 anchors) and closes
// it, which anchors the head as a shutdown does.
func (e *env) rotateWithRuntime(app string) {
	e.t.Helper()
	rt, err := wire.New(e.t.Context(), e.config(), e.logger(), wire.RuntimeOptions{})
	if err != nil {
		e.t.Fatalf("wire: %v", err)
	}
	a, err := rt.App(app)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := rt.Engine.Rotate(e.t.Context(), a, rotator.Request{Actor: rotator.Actor{Kind: rotator.ActorScheduler, Reason: "audit test"}}); err != nil {
		e.t.Fatalf("rotate %s: %v", app, err)
	}
	if err := rt.Close(); err != nil {
		e.t.Fatalf("close runtime: %v", err)
	}
}

// newDaemon builds (and closes again) a daemon on e's config: the error
// is what `ecarotator run` would stop with.
func (e *env) newDaemon() error {
	e.t.Helper()
	cfg := e.config()
	cfg.Server.Listen = "127.0.0.1:0"
	d, err := daemon.New(daemon.Options{Settings: wire.Daemon(cfg), ConfigPath: e.cfgPath, Logger: e.logger()})
	if err == nil {
		if cerr := d.Close(); cerr != nil {
			e.t.Errorf("close daemon: %v", cerr)
		}
	}
	return err
}

func (e *env) auditLog() string { return filepath.Join(e.dir, "audit.log") }

func (e *env) auditLines() [][]byte {
	e.t.Helper()
	b, err := os.ReadFile(e.auditLog())
	if err != nil {
		e.t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func (e *env) writeAuditLines(lines [][]byte) {
	e.t.Helper()
	if err := os.WriteFile(e.auditLog(), bytes.Join(lines, nil), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// verifyAs runs `ecarotator audit verify` with token and wants exit code
// want and every string of contains in its output.
func (e *env) verifyAs(token string, want int, contains []string, args ...string) string {
	e.t.Helper()
	code, _, out, errOut := e.cli([]string{"VAULT_TOKEN=" + token}, append([]string{"audit", "verify"}, args...)...)
	if code != want {
		e.t.Fatalf("audit verify %v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
	}
	for _, c := range contains {
		if !strings.Contains(out, c) {
			e.t.Errorf("audit verify %v output lacks %q:\n%s", args, c, out)
		}
	}
	return out
}

// forgeLine seals r the way the writer does, but with mac chosen by the
// forger.
func forgeLine(r *audit.Record, mac string) []byte {
	body := audit.AppendCanonical(nil, r)
	r.Hash, r.MAC = audit.HashCanonical(body), mac
	line := append([]byte(nil), body[:len(body)-1]...)
	line = append(line, `,"hash":"`+r.Hash+`","mac":"`+mac+`"}`+"\n"...)
	return line
}

// rechain rewrites lines from i on with recomputed hashes and links after
// edit(lines[i]) — keeping each record's MAC, and restating every
// audit.checkpoint record's head so only its signature can give it away:
// the best an attacker who can write the file but not sign can do.
func rechain(t *testing.T, lines [][]byte, i int, edit func(*audit.Record)) {
	t.Helper()
	prev, err := audit.ParseLine(lines[i-1])
	if err != nil {
		t.Fatal(err)
	}
	prevHash := prev.Hash
	for j := i; j < len(lines); j++ {
		r, err := audit.ParseLine(lines[j])
		if err != nil {
			t.Fatal(err)
		}
		if j == i {
			edit(r)
		}
		if r.Type == audit.EventCheckpoint {
			r.Details["hash"] = prevHash
		}
		r.PrevHash = prevHash
		lines[j] = forgeLine(r, r.MAC)
		prevHash = r.Hash
	}
}

const exitTampered = 4

// TestAuditH1TheShippedAuditorPolicyCannotForgeTheTrail: the review forged
// a record with the auditor's token (the KV MAC key was readable, and
// transit/hmac was granted) and `audit verify` accepted it. Now the
// auditor's token computes no MAC and no signature, and every forgery it
// can make fails verify, online and offline.
func TestAuditH1TheShippedAuditorPolicyCannotForgeTheTrail(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	e.rotateWithRuntime("billing")
	auditor := policyToken(t, root, "auditor")
	ac := clientAs(t, root, auditor)
	ctx := t.Context()

	// The review's paths to a MAC or a signature, with the auditor token.
	for _, p := range []string{"transit/hmac/ecarotator-audit", "transit/hmac/ecarotator-audit/sha2-256", "transit/sign/ecarotator-audit-sign"} {
		_, err := ac.Logical().WriteWithContext(ctx, p, map[string]any{"input": "aGVsbG8="})
		if !isForbidden(err) {
			t.Errorf("auditor on %s: err = %v, want 403", p, err)
		}
	}
	if _, err := ac.KVv2("secret").Get(ctx, "ecarotator/audit/mac-key"); err == nil {
		t.Error("a MAC key is readable under ecarotator/audit/")
	}

	// The untouched trail verifies, for the auditor, online and offline.
	e.verifyAs(auditor, 0, []string{": OK", "MAC: every record checked", "ed25519", "anchor: file-"})
	pub := filepath.Join(e.dir, "audit-public-key.json")
	if code, _, out, errOut := e.cli([]string{"VAULT_TOKEN=" + auditor}, "audit", "public-key", "--out", pub); code != 0 {
		t.Fatalf("audit public-key as auditor: exit %d\n%s%s", code, out, errOut)
	}
	offline := []string{"--file", e.auditLog(), "--public-key", pub, "-c", filepath.Join(e.dir, "none.yaml")}
	e.verifyAs(auditor, 0, []string{": OK", "checked offline", "NOT checked (offline"}, offline...)
	pristine := e.auditLines()

	// Forgery 1: a record appended after the end, carrying another record's
	// (valid) MAC: the best MAC the auditor can obtain.
	lines := append([][]byte(nil), pristine...)
	last, err := audit.ParseLine(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	fake := &audit.Record{V: audit.SchemaVersion, Seq: last.Seq + 1, PrevHash: last.Hash, Event: rotator.Event{
		Type: rotator.EventRotationSucceeded, App: "billing", Time: last.Time, Outcome: rotator.OutcomeOK,
		Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "userpass-bob", Reason: "routine"}}}
	e.writeAuditLines(append(lines, forgeLine(fake, last.MAC)))
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: forged"})
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: unsigned"}, offline...)

	// Forgery 2: an earlier record edited and everything after it
	// re-chained (checkpoint records restated): the signatures give it away.
	lines = append([][]byte(nil), pristine...)
	rechain(t, lines, 3, func(r *audit.Record) { r.Actor.Identity = "someone-else" })
	e.writeAuditLines(lines)
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: forged"})
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: forged", "checkpoint signature invalid"}, offline...)
}

// TestAuditH2ACutTailFailsVerifyAndTheDaemonRefusesToStart: the review cut
// the last records (those of an operator's action) after SIGKILL; verify
// said OK and the daemon restarted on the cut file. Now the anchor in
// Vault catches both.
func TestAuditH2ACutTailFailsVerifyAndTheDaemonRefusesToStart(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.rotateWithRuntime("billing")
	auditor := policyToken(t, e.vault.Client(t), "auditor")
	lines := e.auditLines()
	e.writeAuditLines(lines[:len(lines)-6])

	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: truncated", "the tail was cut off"})
	err := e.newDaemon()
	if !errors.Is(err, audit.ErrAnchorMismatch) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "ecarotator audit repair") {
		t.Fatalf("daemon start on a cut log: %v, want a refusal naming the repair", err)
	}
}

// TestAuditH2ADeletedLogFailsVerifyBlocksTheDaemonUntilAnAuditedRepair:
// deleting the file used to start a fresh chain that verified. Now verify
// and the daemon fail; `audit repair` records the loss, after which both
// pass and verify names the reset.
func TestAuditH2ADeletedLogFailsVerifyBlocksTheDaemonUntilAnAuditedRepair(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.rotateWithRuntime("billing")
	auditor := policyToken(t, e.vault.Client(t), "auditor")
	if err := os.Remove(e.auditLog()); err != nil {
		t.Fatal(err)
	}
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: deleted"})
	if err := e.newDaemon(); !errors.Is(err, audit.ErrAnchorMismatch) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("daemon start without its log: %v, want a refusal", err)
	}

	code, _, out, errOut := e.cli(nil, "audit", "repair", "--operator", "alice", "--reason", "INC-42 log lost with the disk")
	if code != 0 || !strings.Contains(out, "was deleted") {
		t.Fatalf("audit repair: exit %d\n%s%s", code, out, errOut)
	}
	e.verifyAs(auditor, 0, []string{": OK", "anchor reset by audit.repair seq 1", "was deleted"})
	if err := e.newDaemon(); err != nil {
		t.Fatalf("daemon start after the repair: %v", err)
	}
	code, _, out, _ = e.cli(nil, "audit", "list", "--event", "audit.repair")
	if code != 0 || !strings.Contains(out, "operator:alice") {
		t.Fatalf("the repair is not in the trail: exit %d\n%s", code, out)
	}
}

// TestAuditH2AReplacedLogFailsVerifyAndTheDaemonRefusesToStart: a
// genuine log of another chain (same keys, another writer) put in place of
// the real one.
func TestAuditH2AReplacedLogFailsVerifyAndTheDaemonRefusesToStart(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.rotateWithRuntime("billing")
	auditor := policyToken(t, e.vault.Client(t), "auditor")

	other := filepath.Join(e.dir, "other", "audit.log")
	cfg := e.config()
	cfg.Audit.File = other
	rt, err := wire.New(t.Context(), cfg, e.logger(), wire.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Audit.Record(t.Context(), rotator.Event{Type: rotator.EventDaemonStarted, Actor: rotator.Actor{Kind: rotator.ActorSystem}}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, e.auditLog()); err != nil {
		t.Fatal(err)
	}
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: replaced"})
	if err := e.newDaemon(); !errors.Is(err, audit.ErrAnchorMismatch) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("daemon start on a replaced log: %v, want a refusal", err)
	}
}

// TestAuditM4AForkedWriterIsReported: what two unlocked writers used to
// produce — a second, validly MAC'd record with a sequence number already
// used — is reported as a fork.
func TestAuditM4AForkedWriterIsReported(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.rotateWithRuntime("billing")
	auditor := policyToken(t, e.vault.Client(t), "auditor")
	lines := e.auditLines()
	head, err := audit.ParseLine(lines[len(lines)-2])
	if err != nil {
		t.Fatal(err)
	}
	// The forked writer's record: same seq as the last line, linked to the
	// line before it, MAC'd with the real transit key (it was a legitimate
	// writer).
	fork := &audit.Record{V: audit.SchemaVersion, Seq: head.Seq + 1, PrevHash: head.Hash, Event: rotator.Event{
		Type: rotator.EventMFAEnrolled, Time: head.Time, Outcome: rotator.OutcomeOK, Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "token-carol"}}}
	body := audit.AppendCanonical(nil, fork)
	macs, err := audit.Transit(gwv(e.vault.Client(t)), "transit", "ecarotator-audit").Sign(context.Background(), []string{audit.HashCanonical(body)})
	if err != nil {
		t.Fatal(err)
	}
	e.writeAuditLines(append(lines, forgeLine(fork, macs[0])))
	e.verifyAs(auditor, exitTampered, []string{"FAILED", "problem: reordered", "a second writer forked the chain"})
}

func isForbidden(err error) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == 403
}

// gwv is the Vault gateway (the vault adapter) over a test client.
func gwv(c *vaultapi.Client) *vault.Client { return vault.FromAPI(c, "secret") }
