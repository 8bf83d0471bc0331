//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// mfaOperator is one enrolled operator of the MFA tests: their own Vault
// token (the identity), their seed, and the last time-step they used, so
// that every code the test sends is one the server may still accept
// without the test waiting for the wall clock.
type mfaOperator struct {
	name   string // the token's display name (the account shown in authenticator apps)
	entity string // the Vault entity id: who the operator is
	token  string
	seed   string
	last   int64
}

// newOperator creates a Vault token named display (Vault shows it as
// "token-<display>") with the root policy, so the control-path checks pass.
// The token carries an identity entity (through an entity alias on a token
// role), as break-glass requires (M1); entityAlias, when given, names the
// person, so two operators with one alias are one entity.
func (e *env) newOperator(display string, entityAlias ...string) *mfaOperator {
	e.t.Helper()
	alias := display
	if len(entityAlias) > 0 {
		alias = entityAlias[0]
	}
	c := e.vault.Client(e.t)
	if _, err := c.Logical().WriteWithContext(e.t.Context(), "auth/token/roles/operators", map[string]any{
		"allowed_policies": []string{"root"}, "allowed_entity_aliases": []string{"*"}, "orphan": true,
	}); err != nil {
		e.t.Fatalf("token role: %v", err)
	}
	sec, err := c.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{DisplayName: display, Policies: []string{"root"}, TTL: "1h", EntityAlias: alias}, "operators")
	if err != nil {
		e.t.Fatalf("create token for %s: %v", display, err)
	}
	return &mfaOperator{name: "token-" + display, token: sec.Auth.ClientToken, entity: sec.Auth.EntityID}
}

// as runs the CLI with op's Vault token.
func (e *env) as(op *mfaOperator, extraEnv []string, args ...string) (int, string, string) {
	e.t.Helper()
	code, _, out, errOut := e.cli(append([]string{"VAULT_TOKEN=" + op.token}, extraEnv...), args...)
	return code, out, errOut
}

var otpauthRE = regexp.MustCompile(`otpauth://\S+`)

func (e *env) enroll(op *mfaOperator) string {
	e.t.Helper()
	code, out, errOut := e.as(op, nil, "mfa", "enroll")
	if code != 0 {
		e.t.Fatalf("mfa enroll %s: exit %d\n%s", op.name, code, errOut)
	}
	uri := otpauthRE.FindString(out)
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		e.t.Fatalf("enroll output has no otpauth URI: %v\n%s", err, out)
	}
	if key.AccountName() != op.name {
		e.t.Errorf("enrolled account %q, want %q", key.AccountName(), op.name)
	}
	if !strings.ContainsAny(out, "█▀▄") {
		e.t.Errorf("enroll printed no QR code:\n%s", out)
	}
	op.seed = key.Secret()
	return out
}

// code returns op's code for the next time-step the server accepts: after
// the last one used, and not beyond one step ahead of now (skew 1). Codes
// of "now" and "now + 1 step" stay valid across one step boundary, so no
// wall-clock wait is needed for two uses per operator.
func (op *mfaOperator) code(t *testing.T) string {
	t.Helper()
	step := max(op.last+1, time.Now().Unix()/30)
	if step > time.Now().Unix()/30+1 {
		t.Fatalf("%s has used every code the server accepts right now; use another operator", op.name)
	}
	op.last = step
	c, err := totp.GenerateCodeCustom(op.seed, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// current is op's code of the current step, without using it up (for
// requests refused before their code is looked at, or meant to fail).
func (op *mfaOperator) current(t *testing.T) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(op.seed, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// setMFA appends an mfa block to the env's config.
func (e *env) setMFA(block string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if i := strings.Index(string(b), "\nmfa:\n"); i >= 0 {
		b = b[:i+1]
	}
	if err := os.WriteFile(e.cfgPath, append(b, []byte("mfa:\n"+block)...), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// auditEvents reads the audit file as stored.
func (e *env) auditEvents() []map[string]any {
	e.t.Helper()
	code, _, out, errOut := e.cli(nil, "audit", "list", "--json")
	if code != 0 {
		e.t.Fatalf("audit list: exit %d\n%s", code, errOut)
	}
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("audit line %q: %v", line, err)
		}
		evs = append(evs, m)
	}
	return evs
}

func countEvents(evs []map[string]any, typ, outcome string) int {
	n := 0
	for _, ev := range evs {
		if ev["event"] == typ && (outcome == "" || ev["outcome"] == outcome) {
			n++
		}
	}
	return n
}

// TestMFAFlowsOverTheCLI runs every operator flow of the MFA issue with the
// real binary against a real Vault and the simulator: enrolment, reveal,
// rotate now with mfa.enabled, revoke previous with two operators, and the
// refusals (no code, wrong second factor, replayed code, the same operator
// approving, brute force, expired approval). Afterwards nothing secret is in
// any log or audit event, and the revealed secret only on reveal's stdout.
func TestMFAFlowsOverTheCLI(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice, bob, carol, dave := e.newOperator("alice"), e.newOperator("bob"), e.newOperator("carol"), e.newOperator("dave")
	var transcript strings.Builder // every stdout/stderr except reveal's stdout
	record := func(parts ...string) {
		for _, p := range parts {
			transcript.WriteString(p)
		}
	}
	for _, op := range []*mfaOperator{alice, bob, carol, dave} {
		e.enroll(op) // its stdout is the seed's one showing: not in the transcript
	}
	if code, _, errOut := e.as(alice, nil, "mfa", "enroll"); code == 0 {
		t.Error("re-enrolment without disable succeeded")
	} else {
		record(errOut)
	}

	// A first rotation adopts the hand-made path and leaves a previous pair.
	code, out, errOut := e.as(alice, nil, "rotate", "billing", "--reason", "setup")
	record(out, errOut)
	if code != 0 {
		t.Fatalf("rotate: exit %d\n%s", code, errOut)
	}
	rt := e.runtime(wire.RuntimeOptions{NoAudit: true})
	sc, _ := e.stored(rt, "billing")

	t.Run("reveal needs a code and prints the current pair", func(t *testing.T) {
		code, out, errOut := e.as(alice, nil, "reveal", "billing")
		record(out, errOut)
		if code != ExitUsageCode {
			t.Errorf("reveal without --code: exit %d, want %d", code, ExitUsageCode)
		}
		code, out, errOut = e.as(alice, nil, "reveal", "billing", "--code", wrong(alice.current(t)), "--reason", "wrong")
		record(out, errOut)
		if code == 0 || strings.Contains(out, sc.Current.Secret.Reveal()) {
			t.Errorf("reveal with a wrong code: exit %d, stdout %q", code, out)
		}
		good := alice.code(t)
		code, revealed, errOut := e.as(alice, nil, "reveal", "billing", "--code", good, "--reason", "break-glass test")
		record(errOut)
		if code != 0 {
			t.Fatalf("reveal: exit %d\n%s", code, errOut)
		}
		if !strings.Contains(revealed, "consumer_key="+sc.Current.Key) || !strings.Contains(revealed, "consumer_secret="+sc.Current.Secret.Reveal()) {
			t.Errorf("reveal stdout lacks the current pair:\n%s", revealed)
		}
		code, out, errOut = e.as(alice, nil, "reveal", "billing", "--code", good)
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "already used") {
			t.Errorf("replayed code: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("rotate now needs a code when mfa is enabled", func(t *testing.T) {
		e.setMFA("  enabled: true\n")
		defer e.setMFA("  enabled: false\n")
		code, out, errOut := e.as(carol, nil, "rotate", "support", "--reason", "no code")
		record(out, errOut)
		if code != ExitUsageCode {
			t.Errorf("rotate without --code: exit %d, want %d", code, ExitUsageCode)
		}
		code, out, errOut = e.as(carol, nil, "rotate", "support", "--reason", "incident", "--code", carol.code(t))
		record(out, errOut)
		if code != 0 {
			t.Fatalf("rotate with code: exit %d\n%s", code, errOut)
		}
	})

	var approvalID string
	t.Run("revoke previous needs two different operators", func(t *testing.T) {
		code, out, errOut := e.as(alice, nil, "retire", "billing", "--revoke", "--code", alice.code(t), "--reason", "leaked in a ticket")
		record(out, errOut)
		if code != 0 {
			t.Fatalf("retire --revoke: exit %d\n%s", code, errOut)
		}
		m := regexp.MustCompile(`approval id\s+([0-9a-f]{32})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no approval id in:\n%s", out)
		}
		approvalID = m[1]
		e.mustAuth("previous pair before approval", sc.Previous, rt.Cfg.Apps[0].Verify.TokenURLs[0])

		code, out, errOut = e.as(alice, nil, "approve", approvalID, "--code", alice.current(t))
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "second, different operator") {
			t.Errorf("the requester approving: exit %d, stderr %q", code, errOut)
		}
		code, out, errOut = e.as(bob, nil, "approve", approvalID, "--code", alice.current(t))
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "invalid code") {
			t.Errorf("a wrong second factor: exit %d, stderr %q", code, errOut)
		}
		code, out, errOut = e.as(bob, nil, "approve", approvalID, "--code", bob.code(t))
		record(out, errOut)
		if code != 0 {
			t.Fatalf("approve: exit %d\n%s", code, errOut)
		}
		e.mustReject("previous pair after approval", sc.Previous, rt.Cfg.Apps[0].Verify.TokenURLs[0])
		after, _ := e.stored(rt, "billing")
		if !after.Previous.IsZero() {
			t.Error("previous pair still in Vault after the approved revoke")
		}
		code, out, errOut = e.as(carol, nil, "approve", approvalID, "--code", carol.current(t))
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "already used") {
			t.Errorf("approving twice: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("approvals expire", func(t *testing.T) {
		e.setMFA("  approval_ttl: 1ms\n")
		defer e.setMFA("  enabled: false\n")
		// Rotate again so there is a previous pair to revoke.
		if code, out, errOut := e.as(dave, nil, "rotate", "analytics", "--reason", "setup"); code != 0 {
			t.Fatalf("rotate: %d\n%s%s", code, out, errOut)
		}
		code, out, errOut := e.as(dave, nil, "retire", "analytics", "--revoke", "--code", dave.code(t))
		record(out, errOut)
		m := regexp.MustCompile(`approval id\s+([0-9a-f]{32})`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("retire --revoke: exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut = e.as(bob, nil, "approve", m[1], "--code", bob.current(t))
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "approval expired") {
			t.Errorf("expired approval: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("brute force locks the operator out", func(t *testing.T) {
		e.setMFA("  max_failures: 3\n  lockout: 1h\n")
		defer e.setMFA("  enabled: false\n")
		right := dave.code(t)
		for i := 0; i < 3; i++ {
			code, out, errOut := e.as(dave, nil, "reveal", "analytics", "--code", wrong(right))
			record(out, errOut)
			if code == 0 || !strings.Contains(errOut, "invalid code") {
				t.Fatalf("attempt %d: exit %d, stderr %q", i+1, code, errOut)
			}
		}
		code, out, errOut := e.as(dave, nil, "reveal", "analytics", "--code", right)
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "locked out") {
			t.Errorf("right code while locked out: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("disable stops the operator's codes", func(t *testing.T) {
		code, out, errOut := e.as(carol, nil, "mfa", "disable")
		record(out, errOut)
		if code != 0 {
			t.Fatalf("mfa disable: exit %d\n%s", code, errOut)
		}
		code, out, errOut = e.as(carol, nil, "reveal", "billing", "--code", carol.code(t))
		record(out, errOut)
		if code == 0 || !strings.Contains(errOut, "not enrolled") {
			t.Errorf("disabled operator: exit %d, stderr %q", code, errOut)
		}
	})

	evs := e.auditEvents()
	for typ, outcome := range map[string]string{
		"mfa.enrolled": "ok", "mfa.verified": "ok", "mfa.failed": "denied", "mfa.disabled": "ok",
		"secret.revealed": "ok", "approval.requested": "ok", "approval.granted": "ok", "previous.revoked": "ok",
	} {
		if countEvents(evs, typ, outcome) == 0 {
			t.Errorf("audit trail has no %s (%s) event", typ, outcome)
		}
	}
	if code, _, out, errOut := e.cli(nil, "audit", "verify"); code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errOut)
	}

	// Leak check: seeds and the revealed secret appear in no log line
	// (stderr of every command, log level debug) and no audit record.
	raw, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	hay := transcript.String() + string(raw) + e.logs.String()
	for _, op := range []*mfaOperator{alice, bob, carol, dave} {
		if strings.Contains(hay, op.seed) {
			t.Errorf("the seed of %s leaked", op.name)
		}
	}
	if strings.Contains(hay, sc.Current.Secret.Reveal()) {
		t.Error("the revealed secret leaked outside reveal's stdout")
	}
	if strings.Contains(hay, "otpauth://") {
		t.Error("an otpauth URI leaked outside enrol's stdout")
	}
}

// ExitUsageCode mirrors cmd/ecarotator's ExitUsage.
const ExitUsageCode = 2

// TestCrashWhileTheSettingIsOpen kills `ecarotator rotate` right after it
// opened the secret-access setting; the next run resumes, and afterwards
// the setting is back at its prior value (off) and the audit trail shows
// both the opening and the restore.
func TestCrashWhileTheSettingIsOpen(t *testing.T) {
	e := newEnv(t, envOptions{lockTTL: "2s"})
	code, killed, _, errOut := e.cli([]string{"ECAROTATOR_CRASH_AT=after:open_secret_access"}, "rotate", "billing", "--reason", "crash test")
	if !killed {
		t.Fatalf("not killed at after:open_secret_access (exit %d)\n%s", code, errOut)
	}
	if !e.sim.SecretAccess("devhub") {
		t.Fatal("setup: the setting should be open at the crash")
	}
	deadline := time.Now().Add(30 * time.Second)
	var out string
	for {
		code, _, out, errOut = e.cli(nil, "rotate", "billing", "--reason", "after crash")
		if code == 0 || time.Now().After(deadline) || !strings.Contains(errOut, rotator.ErrLocked.Error()) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling the crashed lease's expiry, bounded by deadline
	}
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errOut)
	}
	if e.sim.SecretAccess("devhub") {
		t.Error("I5: the setting is still on after the restart; its prior value was off")
	}
	evs := e.auditEvents()
	if countEvents(evs, "secret_access.opened", "") < 1 || countEvents(evs, "secret_access.restored", "") < 1 {
		t.Errorf("audit trail lacks secret_access.opened or secret_access.restored")
	}
	rt := e.runtime(wire.RuntimeOptions{NoAudit: true})
	if h, err := rt.Engine.SecretAccessHolders(t.Context(), "devhub"); err != nil || len(h) != 0 {
		t.Errorf("secret-access holders after the restart: %v, %v", h, err)
	}
}

// identity is op as ecarotator names it in approvals and audit events.
func (op *mfaOperator) identity() string { return op.name + " (entity " + op.entity + ")" }
