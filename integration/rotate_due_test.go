//go:build integration

package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
	vaultapi "github.com/hashicorp/vault/api"
)

// dueSummary is the part of `rotate --due --json` the tests read.
type dueSummary struct {
	Apps []struct {
		App     string `json:"app"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Verdict string `json:"verdict"`
		Error   string `json:"error"`
	} `json:"apps"`
	Due          int `json:"due"`
	Rotated      int `json:"rotated"`
	Failed       int `json:"failed"`
	VerifyFailed int `json:"verify_failed"`
	ExitCode     int `json:"exit_code"`
}

func (s dueSummary) outcomes() map[string]string {
	m := map[string]string{}
	for _, a := range s.Apps {
		m[a.App] = a.Outcome
	}
	return m
}

// dueEnv is a landscape whose apps are due by max age 2s after their last
// rotation; the Dev Hub's secret-access setting is always on.
func dueEnv(t *testing.T, c daemonConfig) *env {
	t.Helper()
	e := newEnv(t, envOptions{simSetup: func(sc *sfsim.Config) {
		for i := range sc.Orgs {
			if sc.Orgs[i].DevHub {
				sc.Orgs[i].SecretAccess = true
			}
		}
	}})
	if c.Schedule == "" {
		c.Schedule, c.Window, c.MaxAge = "@yearly", "1s", "2s"
	}
	c.SecretAccess = "always_on"
	e.cfgPath = e.writeDaemonConfig("due", c)
	return e
}

// rotateByHand rotates apps with `rotate <app>` (adopting the hand-made
// paths), so that they have a rotated_at.
func (e *env) rotateByHand(apps ...string) {
	e.t.Helper()
	for _, app := range apps {
		if code, _, _, stderr := e.cli(nil, "rotate", app, "--reason", "setup"); code != 0 {
			e.t.Fatalf("setup rotate %s: exit %d\n%s", app, code, stderr)
		}
	}
}

// waitMaxAge waits until the apps' last rotation is older than max age
// (2s): the condition is the wall clock itself, which the CLI reads.
func (e *env) waitMaxAge(apps ...string) {
	e.t.Helper()
	rt := e.runtimeFor(e.cfgPath)
	var last time.Time
	for _, app := range apps {
		st, _ := e.stored(rt, app)
		if st.RotatedAt.After(last) {
			last = st.RotatedAt
		}
	}
	eventually(e.t, 10*time.Second, "max age to pass", func() bool { return time.Since(last) > 2500*time.Millisecond })
}

func (e *env) rotateDue(args ...string) (int, dueSummary, string) {
	e.t.Helper()
	code, _, stdout, stderr := e.cli(nil, append([]string{"rotate", "--due", "--json"}, args...)...)
	var s dueSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		e.t.Fatalf("rotate --due --json: exit %d, stdout is not JSON (%v):\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if s.ExitCode != code {
		e.t.Errorf("summary exit_code %d, process exit %d", s.ExitCode, code)
	}
	return code, s, stderr
}

// TestRotateDueNothingDue: apps rotated just now (and an app never rotated
// by ecarotator) are not due: exit 0, nothing promoted.
func TestRotateDueNothingDue(t *testing.T) {
	e := dueEnv(t, daemonConfig{Schedule: "@yearly", Window: "1h", MaxAge: "720h"})
	e.rotateByHand("billing")
	before := e.promotes()
	code, s, stderr := e.rotateDue()
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	want := map[string]string{"billing": "not_due", "support": "not_due", "analytics": "not_due"}
	for app, w := range want {
		if got := s.outcomes()[app]; got != w {
			t.Errorf("%s: outcome %q, want %q", app, got, w)
		}
	}
	if s.Due != 0 || s.Rotated != 0 {
		t.Errorf("summary due=%d rotated=%d, want 0 and 0", s.Due, s.Rotated)
	}
	// Quiet on success: no INFO lines (the Vault login among them).
	if strings.Contains(stderr, "INFO") || strings.Contains(stderr, "logged in") {
		t.Errorf("rotate --due printed log lines on success:\n%s", stderr)
	}
	if got := len(e.promotes()["billing"]) - len(before["billing"]); got != 0 {
		t.Errorf("billing promoted %d times, want 0", got)
	}
}

// TestRotateDueRotatesDueApps: the apps past max age rotate, the one never
// rotated by ecarotator (no rotated_at) is not due; exit 0; a second run
// right after finds nothing due.
func TestRotateDueRotatesDueApps(t *testing.T) {
	e := dueEnv(t, daemonConfig{})
	e.rotateByHand("billing", "support")
	e.waitMaxAge("billing", "support")
	before := e.promotes()
	code, s, stderr := e.rotateDue()
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	for app, w := range map[string]string{"billing": "rotated", "support": "rotated", "analytics": "not_due"} {
		if got := s.outcomes()[app]; got != w {
			t.Errorf("%s: outcome %q, want %q", app, got, w)
		}
	}
	for _, a := range s.Apps {
		if a.Outcome == "rotated" && (a.Reason != "MaxAgeExceeded" || a.Verdict != string(rotator.ReasonMaxAge)) {
			t.Errorf("%s: reason %q verdict %q, want MaxAgeExceeded twice", a.App, a.Reason, a.Verdict)
		}
	}
	after := e.promotes()
	for _, app := range []string{"billing", "support"} {
		if got := len(after[app]) - len(before[app]); got != 1 {
			t.Errorf("%s promoted %d times, want 1", app, got)
		}
	}
	rt := e.runtimeFor(e.cfgPath)
	for _, app := range []string{"billing", "support"} {
		st, _ := e.stored(rt, app)
		e.mustAuth(app+" after rotate --due", st.Current, e.sim.TokenURL("devhub"))
	}
	// Only --app apps are looked at; right after a rotation nothing is due.
	code, s, stderr = e.rotateDue("--app", "billing")
	if code != 0 || len(s.Apps) != 1 || s.Apps[0].Outcome != "not_due" {
		t.Errorf("second run: exit %d, apps %+v, want 0 and billing not_due\n%s", code, s.Apps, stderr)
	}
}

// TestRotateDueVerificationFails: the new pair never propagates, so its
// proof fails: exit 4, and Vault keeps serving the working previous pair.
func TestRotateDueVerificationFails(t *testing.T) {
	e := dueEnv(t, daemonConfig{})
	e.rotateByHand("billing")
	rt := e.runtimeFor(e.cfgPath)
	prev, _ := e.stored(rt, "billing")
	e.waitMaxAge("billing")
	// Pairs take 90s to propagate, longer than the 20s verify timeout; the
	// simulator's clock moves two minutes on so that the current pair has
	// propagated (and the Dev Hub's 2m50s JWT is still inside its life).
	e.sim.SetPropagationDelay(90 * time.Second)
	e.sim.Advance(2 * time.Minute)
	code, s, stderr := e.rotateDue("--app", "billing")
	if code != 4 {
		t.Fatalf("exit %d, want 4\n%s", code, stderr)
	}
	if got := s.outcomes()["billing"]; got != "verify_failed" || s.VerifyFailed != 1 {
		t.Errorf("billing outcome %q, verify_failed %d; want verify_failed and 1", got, s.VerifyFailed)
	}
	st, _ := e.stored(rt, "billing")
	if st.Current.Key != prev.Current.Key {
		t.Errorf("vault current moved to %s after a failed proof, want %s", st.Current.Key, prev.Current.Key)
	}
	e.mustAuth("billing's previous pair", st.Current, e.sim.TokenURL("devhub"))
}

// TestRotateDueOtherFailure: Salesforce refuses the staging request with
// REQUEST_LIMIT_EXCEEDED: exit 1, the app is reported failed and the other
// due app still rotates.
func TestRotateDueOtherFailure(t *testing.T) {
	e := dueEnv(t, daemonConfig{})
	e.rotateByHand("billing", "support")
	e.waitMaxAge("billing", "support")
	e.sim.SetFaults([]sfsim.Fault{{Org: "devhub", Route: sfsim.RouteStaged, Method: "POST", Kind: sfsim.FaultLimit, Count: 1}})
	code, s, stderr := e.rotateDue("--app", "billing,support")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if got := s.outcomes(); got["billing"] != "failed" || got["support"] != "rotated" {
		t.Errorf("outcomes %v, want billing failed and support rotated", got)
	}
	if s.Failed != 1 || s.Rotated != 1 {
		t.Errorf("summary failed=%d rotated=%d, want 1 and 1", s.Failed, s.Rotated)
	}
}

// TestRotateDueBesideDaemon runs `rotate --due` in a loop while a daemon
// serves the same apps on minute slots (window 20s). Both take the same
// slot and engine leases and the same decision, so every slot is rotated
// exactly once: Salesforce never sees two promotes of one app in one
// minute.
func TestRotateDueBesideDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("two minutes of real time")
	}
	e := dueEnv(t, daemonConfig{Schedule: "* * * * *", Window: "20s", MaxAge: "720h", LockTTL: "6s", Concurrency: 3})
	apps := []string{"billing", "support", "analytics"}
	e.rotateByHand(apps...)
	setup := e.promotes()
	e.startDaemon(e.cfgPath, daemon.Options{})

	// Two full slots after the next one opens.
	deadline := time.Now().Truncate(time.Minute).Add(2*time.Minute + 30*time.Second)
	cliRotated, runs := 0, 0
	seen := map[string]int{}
	for time.Now().Before(deadline) {
		code, s, stderr := e.rotateDue()
		if code != 0 {
			t.Fatalf("rotate --due beside the daemon: exit %d\n%s", code, stderr)
		}
		cliRotated += s.Rotated
		runs++
		for _, a := range s.Apps {
			seen[a.Outcome+"/"+a.Verdict]++
		}
	}
	t.Logf("%d runs of rotate --due; outcomes/verdicts %v", runs, seen)
	all := e.promotes()
	total := 0
	for _, app := range apps {
		times := all[app][len(setup[app]):]
		total += len(times)
		if len(times) < 2 {
			t.Errorf("%s: %d promotes over two minute slots, want 2", app, len(times))
		}
		slots := map[time.Time]int{}
		for _, at := range times {
			slots[at.Truncate(time.Minute)]++
		}
		for slot, n := range slots {
			if n != 1 {
				t.Errorf("%s: slot %s rotated %d times, want once", app, slot.Format(time.TimeOnly), n)
			}
		}
	}
	t.Logf("%d rotations: %d by rotate --due, %d by the daemon", total, cliRotated, total-cliRotated)
	// Which side wins a slot is a race; each side must have met the other
	// at least once: rotate --due wins a slot, or finds the daemon holding
	// the app's lease (locked), or finds a slot already served.
	if met := seen["locked/"] + seen["skipped/"+string(rotator.ReasonSlotServed)]; cliRotated == 0 && met == 0 {
		t.Errorf("rotate --due never won a slot nor met the daemon's lease or a served slot: the test did not exercise the competition")
	}
	if cliRotated == total && !strings.Contains(e.logs.String(), string(rotator.ReasonSlotServed)) {
		t.Errorf("the daemon rotated no slot and never found one served: it did not compete")
	}
}

// TestRotateDueWithCIJWTLogin is the GitHub Actions example end to end on a
// real Vault: the jwt mount trusts a key this test holds (in place of
// GitHub's OIDC discovery), the role is examples/ci/github/vault-role.json
// unchanged with the shipped ecarotator policy, the test signs the job's
// OIDC token, and `rotate --due` logs in with it (no Vault token in its
// environment) and rotates the due app. A token for another branch is
// refused with exit 1 and rotates nothing.
func TestRotateDueWithCIJWTLogin(t *testing.T) {
	e := dueEnv(t, daemonConfig{})
	root := e.vault.Client(t)
	pol, err := os.ReadFile("../configs/policies/ecarotator.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("ecarotator", string(pol)); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://token.actions.githubusercontent.com"
	if err := root.Sys().EnableAuthWithOptions("jwt-github", &vaultapi.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt-github/config", map[string]any{
		"jwt_validation_pubkeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, "bound_issuer": issuer,
	}); err != nil {
		t.Fatal(err)
	}
	roleJSON, err := os.ReadFile("../examples/ci/github/vault-role.json")
	if err != nil {
		t.Fatal(err)
	}
	var role map[string]any
	if err := json.Unmarshal(roleJSON, &role); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt-github/role/ecarotator-github", role); err != nil {
		t.Fatalf("write the example role: %v", err)
	}
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ciCfg := strings.Replace(string(cfg), "  lock_ttl:", "  auth:\n    method: jwt\n    jwt: {mount: jwt-github, role: ecarotator-github, token_env: VAULT_ID_TOKEN}\n  lock_ttl:", 1)
	if err := os.WriteFile(e.cfgPath, []byte(ciCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	jobToken := func(ref string) string {
		now := time.Now()
		return signRS256(t, key, map[string]any{
			"iss": issuer, "aud": "https://vault.example.com", "sub": "repo:acme/salesforce-secrets:environment:production",
			"repository": "acme/salesforce-secrets", "ref": ref, "environment": "production",
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		})
	}

	// The setup rotation runs as root (an operator), then max age passes.
	root2 := e.cfgPath + ".root"
	if err := os.WriteFile(root2, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfgPath = root2
	e.rotateByHand("billing")
	e.waitMaxAge("billing")
	e.cfgPath = strings.TrimSuffix(root2, ".root")
	before := e.promotes()

	code, _, stdout, stderr := e.cli([]string{"VAULT_TOKEN=", "VAULT_ID_TOKEN=" + jobToken("refs/heads/feature")}, "rotate", "--due", "--json")
	if code != 1 {
		t.Fatalf("a feature-branch token: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	code, _, stdout, stderr = e.cli([]string{"VAULT_TOKEN=", "VAULT_ID_TOKEN=" + jobToken("refs/heads/main")}, "rotate", "--due", "--json")
	if code != 0 {
		t.Fatalf("the main branch's token: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	var s dueSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.outcomes()["billing"] != "rotated" {
		t.Errorf("billing outcome %q, want rotated", s.outcomes()["billing"])
	}
	if got := len(e.promotes()["billing"]) - len(before["billing"]); got != 1 {
		t.Errorf("billing promoted %d times, want 1", got)
	}
}

// signRS256 signs claims as an RS256 JWT (a CI's OIDC token).
func signRS256(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}
