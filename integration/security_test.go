//go:build integration

package integration

// Each test here reproduces one attack of the security review
// (shared/reviews/security-2026-11.md) on a real Vault and the simulator,
// and shows that it now fails. Test names carry the finding's id.

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/pquerna/otp"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

// secOperator creates a Vault token for a person: display name display,
// identity entity named by alias (two tokens with one alias are one
// person), holding exactly policies.
func (e *env) secOperator(display, alias string, policies ...string) *mfaOperator {
	e.t.Helper()
	c := e.vault.Client(e.t)
	role := "sec-" + display
	if _, err := c.Logical().WriteWithContext(e.t.Context(), "auth/token/roles/"+role, map[string]any{
		"allowed_policies": policies, "allowed_entity_aliases": []string{"*"}, "orphan": true,
	}); err != nil {
		e.t.Fatalf("token role: %v", err)
	}
	sec, err := c.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{DisplayName: display, Policies: policies, TTL: "1h", EntityAlias: alias}, role)
	if err != nil {
		e.t.Fatalf("create token for %s: %v", display, err)
	}
	if sec.Auth.EntityID == "" {
		e.t.Fatalf("token for %s has no entity", display)
	}
	return &mfaOperator{name: "token-" + display, token: sec.Auth.ClientToken, entity: sec.Auth.EntityID}
}

// enrollDirect enrolls op's entity as an MFA administrator would (root
// token, in process) and keeps the seed for the test's codes.
func (e *env) enrollDirect(op *mfaOperator) error {
	e.t.Helper()
	svc, err := mfa.New(mfa.Options{Vault: vault.FromAPI(e.vault.Client(e.t), ""), Audit: nopAudit{}, Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatal(err)
	}
	uri, err := svc.Enroll(e.t.Context(), op.identity())
	if err != nil {
		return err
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		e.t.Fatal(err)
	}
	op.seed = key.Secret()
	return nil
}

// putPolicyFile writes a shipped policy unchanged.
func putPolicyFile(t *testing.T, c *vaultapi.Client, name, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../configs/policies", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy(name, string(b)); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	eventually(t, 15*time.Second, "readyz", func() bool {
		code, _ := httpDo(t, http.MethodGet, base+"/readyz", "", "")
		return code == http.StatusOK
	})
}

// TestH3RotateNowCannotEndTheOverlapWithoutTwoPersonApproval: the review's
// E2E. An operator holding only operator.hcl (MFA off, the default) asks
// for a second rotate-now while the previous pair is inside its overlap;
// that used to delete the Rotated slot (revoking the previous pair). Now
// the API answers 409 naming previous_valid_until, the CLI refuses too,
// and the previous pair keeps working; after the two-person revoke, the
// same rotate-now is accepted.
func TestH3RotateNowCannotEndTheOverlapWithoutTwoPersonApproval(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	putPolicyFile(t, root, "operator", "operator.hcl")
	mallory := e.secOperator("mallory", "mallory", "operator")
	alice, bob := e.secOperator("alice", "alice", "operator"), e.secOperator("bob", "bob", "operator")
	for _, op := range []*mfaOperator{alice, bob} {
		if err := e.enrollDirect(op); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := e.writeDaemonConfig("h3", daemonConfig{Overlap: "{policy: salesforce-expiry}"})
	d, base := e.startMFADaemon(cfgPath)
	waitReady(t, base)
	rt := d.Runtime()
	rotate := base + "/api/v1/apps/billing/rotate"

	if code, body := httpDo(t, http.MethodPost, rotate, mallory.token, `{"reason":"first"}`); code != http.StatusAccepted {
		t.Fatalf("first rotate-now (no previous pair yet): %d %s", code, body)
	}
	eventually(t, 30*time.Second, "billing rotated", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && !st.Previous.IsZero()
	})
	// The first rotation is finished (journal cleared): a request now
	// would start a new rotation, not resume this one.
	eventually(t, 30*time.Second, "first rotation finished", func() bool {
		_, _, err := rt.Vault.Load(t.Context(), "billing")
		return errors.Is(err, rotator.ErrNotFound)
	})
	st, meta := e.stored(rt, "billing")
	if !st.PreviousValidUntil.After(time.Now()) {
		t.Fatalf("previous_valid_until %s is not in the future", st.PreviousValidUntil)
	}
	original := st.Previous
	until := st.PreviousValidUntil.UTC().Format(time.RFC3339)

	// The attack: a second rotate-now during the overlap.
	code, body := httpDo(t, http.MethodPost, rotate, mallory.token, `{"reason":"rotate now"}`)
	if code != http.StatusConflict || !strings.Contains(body, server.CodePreviousInOverlap) ||
		!strings.Contains(body, until) || !strings.Contains(body, "previous_valid_until") || !strings.Contains(body, "revoke-previous") {
		t.Fatalf("rotate-now during the overlap: %d %s; want 409 %s naming %s and the approval", code, body, server.CodePreviousInOverlap, until)
	}
	e.mustAuth("previous pair after the refused rotate-now", original, e.sim.TokenURL("devhub"))
	if _, m := e.stored(rt, "billing"); m.Version != meta.Version {
		t.Errorf("vault version moved %d → %d: a rotation ran", meta.Version, m.Version)
	}
	// The CLI refuses the same (with a token that could otherwise rotate).
	admin := e.newOperator("admin")
	exit, _, errOut := e.as(admin, nil, "rotate", "billing", "--reason", "cli rotate now")
	if exit == 0 || !strings.Contains(errOut, "previous_valid_until") || !strings.Contains(errOut, until) {
		t.Fatalf("CLI rotate during the overlap: exit %d, stderr %q", exit, errOut)
	}
	e.mustAuth("previous pair after the refused CLI rotate", original, e.sim.TokenURL("devhub"))

	// The way the refusal names: revoke-previous with two people, then rotate.
	code, body = httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", alice.token, `{"reason":"rotate again","mfa_code":"`+alice.code(t)+`"}`)
	var pending server.ApprovalAccepted
	if err := json.Unmarshal([]byte(body), &pending); code != http.StatusAccepted || err != nil || pending.Status != "pending_approval" {
		t.Fatalf("revoke-previous: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/approvals/"+pending.Approval.ID+"/approve", bob.token, `{"mfa_code":"`+bob.code(t)+`"}`); code != http.StatusAccepted {
		t.Fatalf("approve: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "previous pair revoked", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && st.Previous.IsZero()
	})
	if code, body := httpDo(t, http.MethodPost, rotate, mallory.token, `{"reason":"after the approved revoke"}`); code != http.StatusAccepted {
		t.Fatalf("rotate-now after the approved revoke: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "billing rotated again", func() bool {
		st2, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && st2.RotationID != st.RotationID && !st2.Previous.IsZero()
	})
}

// TestM1OneEntityWithTwoLoginsCannotApproveItsOwnRevoke: one person (one
// entity) with two tokens under different display names, as with an SSO
// and a userpass mount. The second login used to count as a second
// operator. Now it is refused as the same operator; its "own" enrolment is
// the first one's; a token without an entity is refused for break-glass;
// and the audit trail names the entity.
func TestM1OneEntityWithTwoLoginsCannotApproveItsOwnRevoke(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	putPolicyFile(t, root, "operator", "operator.hcl")
	alice1 := e.secOperator("alice", "alice-person", "operator")
	alice2 := e.secOperator("alice-sso", "alice-person", "operator")
	if alice1.entity != alice2.entity || alice1.name == alice2.name {
		t.Fatalf("setup: want one entity with two display names, got %s/%s and %s/%s", alice1.name, alice1.entity, alice2.name, alice2.entity)
	}
	if err := e.enrollDirect(alice1); err != nil {
		t.Fatal(err)
	}
	if err := e.enrollDirect(alice2); !errors.Is(err, mfa.ErrAlreadyEnrolled) {
		t.Fatalf("second enrolment of the same entity: %v, want ErrAlreadyEnrolled", err)
	}
	cfgPath := e.writeDaemonConfig("m1", daemonConfig{Overlap: "{policy: after, after: 1h}"})
	d, base := e.startMFADaemon(cfgPath)
	waitReady(t, base)
	rt := d.Runtime()
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/rotate", alice1.token, `{"reason":"setup"}`); code != http.StatusAccepted {
		t.Fatalf("rotate: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "billing rotated", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && !st.Previous.IsZero()
	})
	st, _ := e.stored(rt, "billing")

	code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", alice1.token, `{"reason":"leaked","mfa_code":"`+alice1.code(t)+`"}`)
	var pending server.ApprovalAccepted
	if err := json.Unmarshal([]byte(body), &pending); code != http.StatusAccepted || err != nil {
		t.Fatalf("revoke-previous: %d %s", code, body)
	}
	if !strings.Contains(pending.Approval.Requester, alice1.entity) || !strings.Contains(pending.Approval.Requester, alice1.name) {
		t.Errorf("requester %q does not name display name and entity", pending.Approval.Requester)
	}
	// The attack: the second login approves with the person's own code.
	code, body = httpDo(t, http.MethodPost, base+"/api/v1/approvals/"+pending.Approval.ID+"/approve", alice2.token, `{"mfa_code":"`+alice1.code(t)+`"}`)
	if code != http.StatusForbidden || !strings.Contains(body, server.CodeForbidden) {
		t.Fatalf("self-approval through a second login: %d %s; want 403", code, body)
	}
	e.mustAuth("previous pair after the refused self-approval", st.Previous, e.sim.TokenURL("devhub"))

	// A token without an entity cannot request break-glass at all.
	plain, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{DisplayName: "plain", Policies: []string{"operator"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	code, body = httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", plain.Auth.ClientToken, `{"reason":"x","mfa_code":"123456"}`)
	if code != http.StatusForbidden || !strings.Contains(body, server.CodeEntityRequired) {
		t.Fatalf("break-glass with an entity-less token: %d %s; want 403 %s", code, body, server.CodeEntityRequired)
	}
	// The audit trail names the entity and the display name.
	raw, err := os.ReadFile(filepath.Join(e.dir, "m1-audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var requested, denied bool
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, alice1.entity) {
			continue
		}
		requested = requested || (strings.Contains(line, "approval.requested") && strings.Contains(line, alice1.name))
		denied = denied || (strings.Contains(line, "approval.granted") && strings.Contains(line, "same_operator") && strings.Contains(line, alice2.name))
	}
	if !requested || !denied {
		t.Errorf("audit trail lacks entity-named events: requested %v, self-approval denied %v", requested, denied)
	}
}

// TestM2ReadAPIRequiresAReadTokenAndItsOwnHost: the review's E2E read
// the inventory without a token, through a rebinding Host, and burned the
// Dev Hub's API budget with 60 plan calls. Now: 401 without a token, 403
// without read on the status control path, 421 for a foreign Host, the
// plan is computed a bounded number of times, and the probes stay open.
func TestM2ReadAPIRequiresAReadTokenAndItsOwnHost(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	if err := root.Sys().PutPolicy("billing-reader", `path "secret/data/ecarotator/control/billing/status" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	mk := func(p string) string {
		s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{p}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	reader, nobody := mk("billing-reader"), mk("default")
	cfgPath := e.writeDaemonConfig("m2", daemonConfig{})
	_, base := e.startDaemon(cfgPath, daemon.Options{})
	waitReady(t, base)

	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"list without a token", "/api/v1/apps", "", 401},
		{"detail without a token", "/api/v1/apps/billing", "", 401},
		{"plan without a token", "/api/v1/plan", "", 401},
		{"detail without read", "/api/v1/apps/billing", nobody, 403},
		{"detail of another app", "/api/v1/apps/support", reader, 403},
		{"detail with read", "/api/v1/apps/billing", reader, 200},
	} {
		if code, body := httpDo(t, http.MethodGet, base+tc.path, tc.token, ""); code != tc.want {
			t.Errorf("%s: GET %s = %d %s, want %d", tc.name, tc.path, code, body, tc.want)
		}
	}
	var list struct{ Apps []server.AppStatus }
	code, body := httpDo(t, http.MethodGet, base+"/api/v1/apps", reader, "")
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Apps) != 1 || list.Apps[0].Name != "billing" {
		t.Errorf("list with read on billing only: %d %s", code, body)
	}
	// DNS rebinding: the same request under an attacker's host name.
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/apps/billing", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebind.attacker.example"
	req.Header.Set("X-Vault-Token", reader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("rebinding Host: %d, want 421", resp.StatusCode)
	}
	// Budget: 60 plans cost at most one computation's calls.
	used0, _ := e.sim.APIUsage("devhub")
	limited := 0
	for i := 0; i < 60; i++ {
		code, _ := httpDo(t, http.MethodGet, base+"/api/v1/plan?app=billing", reader, "")
		switch code {
		case 200:
		case 429:
			limited++
		default:
			t.Fatalf("plan %d: %d", i, code)
		}
	}
	used1, _ := e.sim.APIUsage("devhub")
	one := used1 - used0
	code, _ = httpDo(t, http.MethodGet, base+"/api/v1/plan?app=billing", reader, "")
	if used2, _ := e.sim.APIUsage("devhub"); code != 200 || used2 != used1 {
		t.Errorf("cached plan: %d, API calls %d → %d", code, used1, used2)
	}
	if one > 10 {
		t.Errorf("60 plan calls spent %d Dev Hub API calls; one plan costs a handful", one)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := httpDo(t, http.MethodGet, base+p, "", ""); code != 200 {
			t.Errorf("GET %s without a token = %d, want 200", p, code)
		}
	}
	_ = limited
}

// TestM3ReloadThatChangesMFAIsRefusedAndTheEffectiveStateIsShown: the
// review turned mfa.enabled on with SIGHUP, saw "config reloaded" and then
// rotated without a code. Now the reload is refused as needing a restart
// (audited config.rejected), /readyz and the status API show the MFA state
// actually enforced.
func TestM3ReloadThatChangesMFAIsRefusedAndTheEffectiveStateIsShown(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfgPath := e.writeDaemonConfig("m3", daemonConfig{Overlap: "{policy: after, after: 1h}"})
	d, base := e.startMFADaemon(cfgPath)
	waitReady(t, base)
	_, ready := httpDo(t, http.MethodGet, base+"/readyz", "", "")
	if !strings.Contains(ready, `"mfa_enabled":"false"`) {
		t.Fatalf("readyz lacks the effective MFA state: %s", ready)
	}
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(good, []byte("\nmfa:\n  enabled: true\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	err = d.Reload()
	if !errors.Is(err, daemon.ErrRestartNeeded) || !strings.Contains(err.Error(), "mfa") {
		t.Fatalf("reload with mfa.enabled turned on: %v; want ErrRestartNeeded naming mfa", err)
	}
	_, ready = httpDo(t, http.MethodGet, base+"/readyz", "", "")
	_, apps := httpDo(t, http.MethodGet, base+"/api/v1/apps", e.vault.Token, "")
	if !strings.Contains(ready, `"mfa_enabled":"false"`) || !strings.Contains(apps, `"mfa_enabled":"false"`) {
		t.Errorf("after the refused reload the effective state must say false: readyz %s, apps %s", ready, apps)
	}
	raw, err := os.ReadFile(filepath.Join(e.dir, "m3-audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "config.rejected") || strings.Contains(string(raw), "config.reloaded") {
		t.Errorf("audit: want config.rejected and no config.reloaded")
	}
}

// TestM5PlaintextListenerOutsideLoopback: the daemon used to accept a
// plain-HTTP listener on any address. Now `run` refuses it as a config
// error (exit 3); with server.allow_plaintext it starts, logs and audits
// config.insecure and shows the warning in /readyz.
func TestM5PlaintextListenerOutsideLoopback(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfgPath := e.writeDaemonConfig("m5", daemonConfig{Listen: "0.0.0.0:0"})
	code, _, _, errOut := e.cli(nil, "-c", cfgPath, "run")
	if code != 3 || !strings.Contains(errOut, "server.listen") || !strings.Contains(errOut, "allow_plaintext") {
		t.Fatalf("run with a plaintext 0.0.0.0 listener: exit %d, stderr %q; want 3 naming server.listen", code, tail(errOut, 5))
	}
	cfgPath = e.writeDaemonConfig("m5b", daemonConfig{Listen: "0.0.0.0:0", Extra: "server:\n  allow_plaintext: true\n"})
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The template has its own server block: fold the flag into it.
	s := strings.Replace(string(b), "\nserver:\n  allow_plaintext: true\n", "\n", 1)
	s = strings.Replace(s, "server:\n  listen: \"0.0.0.0:0\"", "server:\n  listen: \"0.0.0.0:0\"\n  allow_plaintext: true", 1)
	if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := e.startDaemon(cfgPath, daemon.Options{})
	base := "http://127.0.0.1:" + portOf(d.Addr().String())
	waitReady(t, base)
	_, ready := httpDo(t, http.MethodGet, base+"/readyz", "", "")
	if !strings.Contains(ready, "allow_plaintext") {
		t.Errorf("readyz does not warn about the plaintext listener: %s", ready)
	}
	eventually(t, 10*time.Second, "config.insecure audited", func() bool {
		raw, _ := os.ReadFile(filepath.Join(e.dir, "m5b-audit.log"))
		return strings.Contains(string(raw), "config.insecure")
	})
	if !strings.Contains(e.logs.String(), "insecure setting in effect") {
		t.Error("no start-up log line for the plaintext listener")
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// TestM6BreakGlassGoesThroughTheDaemon: the review showed that the CLI's
// reveal/approve checks run with the caller's own rights. An operator with
// operator.hcl only (no read on any secret, no seed access) cannot reveal
// directly, but can through the daemon, which checks the code, audits and
// returns a single-use wrapping token; a second redemption fails. The
// two-person revoke runs the same way (retire --revoke / approve --server).
func TestM6BreakGlassGoesThroughTheDaemon(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	putPolicyFile(t, root, "operator", "operator.hcl")
	alice, bob := e.secOperator("alice", "alice", "operator"), e.secOperator("bob", "bob", "operator")
	carol := e.secOperator("carol", "carol", "operator")
	for _, op := range []*mfaOperator{alice, bob, carol} {
		if err := e.enrollDirect(op); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := e.writeDaemonConfig("m6", daemonConfig{Overlap: "{policy: after, after: 1h}"})
	d, base := e.startMFADaemon(cfgPath)
	waitReady(t, base)
	rt := d.Runtime()
	vaultEnv := []string{"VAULT_ADDR=" + e.vault.Addr}

	// Directly, the operator's own token cannot do it.
	if exit, out, _ := e.as(alice, vaultEnv, "reveal", "billing", "--code", alice.current(t)); exit == 0 || strings.Contains(out, "consumer_secret=") {
		t.Fatalf("direct reveal with operator.hcl: exit %d, output %q", exit, out)
	}
	// Through the daemon.
	exit, out, errOut := e.as(alice, vaultEnv, "reveal", "billing", "--code", alice.code(t), "--reason", "incident 7", "--server", base)
	st, _ := e.stored(rt, "billing")
	if exit != 0 || !strings.Contains(out, "consumer_secret="+st.Current.Secret.Reveal()) {
		t.Fatalf("reveal --server: exit %d, stderr %q", exit, errOut)
	}
	// The HTTP answer itself holds a wrapping token, not the secret; it
	// works once.
	code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/reveal", alice.token, `{"reason":"again","mfa_code":"`+alice.code(t)+`"}`)
	var rv server.Revealed
	if err := json.Unmarshal([]byte(body), &rv); code != 200 || err != nil || rv.WrapToken == "" || strings.Contains(body, st.Current.Secret.Reveal()) {
		t.Fatalf("reveal API: %d (secret in body: %v)", code, strings.Contains(body, st.Current.Secret.Reveal()))
	}
	if _, err := rt.Vault.Unwrap(t.Context(), rotator.NewSecret(rv.WrapToken)); err != nil {
		t.Fatalf("first unwrap: %v", err)
	}
	if _, err := rt.Vault.Unwrap(t.Context(), rotator.NewSecret(rv.WrapToken)); err == nil {
		t.Fatal("a wrapping token worked twice")
	}
	if code, _ := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/reveal", alice.token, `{"reason":"no code"}`); code != http.StatusForbidden {
		t.Errorf("reveal without a code: %d, want 403", code)
	}

	// Two-person revoke through the daemon.
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/rotate", alice.token, `{"reason":"setup"}`); code != http.StatusAccepted {
		t.Fatalf("rotate: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "billing rotated", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && !st.Previous.IsZero()
	})
	exit, out, errOut = e.as(carol, nil, "retire", "billing", "--revoke", "--code", carol.code(t), "--reason", "leaked", "--server", base)
	id := ""
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "approval" && f[1] == "id" {
			id = f[2]
		}
	}
	if exit != 0 || id == "" {
		t.Fatalf("retire --revoke --server: exit %d, out %q, stderr %q", exit, out, errOut)
	}
	if exit, _, errOut := e.as(carol, nil, "approve", id, "--code", carol.current(t), "--server", base); exit == 0 {
		t.Fatalf("the requester approving through the daemon succeeded: %q", errOut)
	}
	if exit, out, errOut := e.as(bob, nil, "approve", id, "--code", bob.code(t), "--server", base); exit != 0 || !strings.Contains(out, "approved") {
		t.Fatalf("approve --server: exit %d, out %q, stderr %q", exit, out, errOut)
	}
	eventually(t, 30*time.Second, "previous pair revoked", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && st.Previous.IsZero()
	})
	raw, err := os.ReadFile(filepath.Join(e.dir, "m6-audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(raw), "secret.revealed") != 2 || strings.Contains(string(raw), st.Current.Secret.Reveal()) {
		t.Errorf("audit: want two secret.revealed events and no secret")
	}
	// Leak check: neither the secret, the wrapping token nor an operator
	// token appears in the daemon's logs or audit trail.
	for what, v := range map[string]string{"secret": st.Current.Secret.Reveal(), "wrapping token": rv.WrapToken, "operator token": alice.token, "seed": alice.seed} {
		if strings.Contains(e.logs.String(), v) || strings.Contains(string(raw), v) {
			t.Errorf("the %s leaked into logs or the audit trail", what)
		}
	}
}
