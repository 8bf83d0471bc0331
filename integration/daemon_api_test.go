//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/notify"
	"github.com/ecarotator/ecarotator/internal/server"
	vaultapi "github.com/hashicorp/vault/api"
)

// webhookReceiver records deliveries whose signature verifies with key.
type webhookReceiver struct {
	key []byte

	mu       sync.Mutex
	verified []notify.Message
	bad      int
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ok := notify.VerifyFresh(r.key, req.Header.Get(notify.HeaderTimestamp), body, req.Header.Get(notify.HeaderSignature), time.Now(), 5*time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m notify.Message
	_ = json.Unmarshal(body, &m)
	r.verified = append(r.verified, m)
}

func (r *webhookReceiver) events(app string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.verified {
		if app == "" || m.App == app {
			out = append(out, m.Event)
		}
	}
	return out
}

func (r *webhookReceiver) has(app, event string) bool {
	for _, e := range r.events(app) {
		if e == event {
			return true
		}
	}
	return false
}

// gate is an OperatorGate that accepts one code.
type gate struct{ code string }

var errBadCode = errors.New("wrong code")

func (g gate) Verify(_ context.Context, _, code, _, _ string) error {
	if code != g.code {
		return errBadCode
	}
	return nil
}

// TestDaemonAPI runs one daemon in-process against a real Vault and the
// simulator: the operator API is authorized by Vault capabilities (403
// without, 202 with), rotate-now and revoke-previous go through the optional
// MFA gate, webhooks arrive signed, status and metrics report the result,
// and a bad config on reload keeps the running one.
func TestDaemonAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)

	// The webhook's HMAC key lives in Vault; the receiver knows it too.
	hmacKey := "test-hmac-key-0123456789"
	if _, err := root.KVv2("secret").Put(t.Context(), "ecarotator/webhooks/ops", map[string]any{"hmac_key": hmacKey}); err != nil {
		t.Fatal(err)
	}
	recv := &webhookReceiver{key: []byte(hmacKey)}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)

	// An operator token with the capability on billing's rotate and revoke
	// control paths, and one without.
	if err := root.Sys().PutPolicy("billing-operator", `
path "secret/data/ecarotator/control/billing/rotate" { capabilities = ["update"] }
path "secret/data/ecarotator/control/billing/revoke" { capabilities = ["update"] }
`); err != nil {
		t.Fatal(err)
	}
	token := func(policies ...string) string {
		s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, NoDefaultPolicy: false, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	withCap, withoutCap := token("billing-operator"), token("default")

	cfgPath := e.writeDaemonConfig("api", daemonConfig{
		Schedule: "@yearly", Overlap: "{policy: after, after: 1h}",
		Extra: `notifications:
  reminder_lead: 8760h
  webhooks:
    - name: ops
      url: ` + hook.URL + `
      secret_vault_path: ecarotator/webhooks/ops
      max_attempts: 3
`,
	})
	d, base := e.startDaemon(cfgPath, daemon.Options{Gate: gate{code: "123456"}})

	eventually(t, 10*time.Second, "readyz", func() bool {
		code, _ := httpDo(t, http.MethodGet, base+"/readyz", "", "")
		return code == http.StatusOK
	})
	if code, _ := httpDo(t, http.MethodGet, base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}

	rotate := base + "/api/v1/apps/billing/rotate"
	if code, body := httpDo(t, http.MethodPost, rotate, withoutCap, `{"reason":"test","mfa_code":"123456"}`); code != http.StatusForbidden {
		t.Fatalf("rotate without the capability: got %d %s, want 403", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, rotate, "", `{"reason":"test"}`); code != http.StatusUnauthorized {
		t.Fatalf("rotate without a token: got %d %s, want 401", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, rotate, withCap, `{"reason":"test","mfa_code":"000000"}`); code != http.StatusForbidden || !strings.Contains(body, server.CodeMFARequired) {
		t.Fatalf("rotate with a wrong MFA code: got %d %s, want 403 %s", code, body, server.CodeMFARequired)
	}
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/support/rotate", withCap, `{"reason":"test","mfa_code":"123456"}`); code != http.StatusForbidden {
		t.Fatalf("rotate support with billing's capability: got %d %s, want 403", code, body)
	}
	code, body := httpDo(t, http.MethodPost, rotate, withCap, `{"reason":"incident 42","mfa_code":"123456"}`)
	if code != http.StatusAccepted {
		t.Fatalf("rotate with the capability: got %d %s, want 202", code, body)
	}

	rt := d.Runtime()
	eventually(t, 30*time.Second, "billing rotated", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && !st.RotatedAt.IsZero() && !st.Previous.IsZero()
	})
	st, _ := e.stored(rt, "billing")
	e.mustAuth("rotated billing", st.Current, e.sim.TokenURL("devhub"), e.sim.TokenURL("acme"))

	// Status: one app with its history, and the list.
	// The API answers from the daemon's memory, which the rotation updates
	// when it returns (after its commit, which the wait above saw in Vault).
	eventually(t, 30*time.Second, "the API shows billing's rotation", func() bool {
		code, body = httpDo(t, http.MethodGet, base+"/api/v1/apps/billing", e.getenv("VAULT_TOKEN"), "")
		return code == http.StatusOK && strings.Contains(body, st.Current.Key) && strings.Contains(body, "vault_version_")
	})
	var list struct{ Apps []server.AppStatus }
	code, body = httpDo(t, http.MethodGet, base+"/api/v1/apps", e.getenv("VAULT_TOKEN"), "")
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list.Apps) != 3 {
		t.Fatalf("apps: %d %s (%v)", code, body, err)
	}
	for _, a := range list.Apps {
		if a.NextRotation.IsZero() {
			t.Errorf("app %s has no next rotation", a.Name)
		}
		if a.Name == "billing" && (a.LastRotation.IsZero() || a.PreviousValidUntil.IsZero()) {
			t.Errorf("billing status %+v: want last rotation and previous valid until", a)
		}
	}
	if code, body := httpDo(t, http.MethodGet, base+"/api/v1/plan?app=support", e.getenv("VAULT_TOKEN"), ""); code != http.StatusOK || !strings.Contains(body, "support") {
		t.Fatalf("plan: %d %s", code, body)
	}

	// Revoke the previous pair (needs its own capability, and the gate).
	prev := st.Previous
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", withoutCap, `{"reason":"leak","mfa_code":"123456"}`); code != http.StatusForbidden {
		t.Fatalf("revoke without the capability: got %d %s, want 403", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", withCap, `{"reason":"leak","mfa_code":"123456"}`); code != http.StatusAccepted {
		t.Fatalf("revoke with the capability: got %d %s, want 202", code, body)
	}
	eventually(t, 30*time.Second, "previous pair revoked", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && st.Previous.IsZero()
	})
	e.mustReject("revoked previous pair", prev, e.sim.TokenURL("devhub"))

	// Webhooks: signed, verified by the receiver.
	eventually(t, 20*time.Second, "webhooks", func() bool {
		return recv.has("billing", notify.EventRotationSucceeded) && recv.has("billing", notify.EventPreviousRevoked) && recv.has("", notify.EventRotationUpcoming)
	})
	recv.mu.Lock()
	if recv.bad != 0 {
		t.Errorf("%d webhook deliveries failed signature verification", recv.bad)
	}
	recv.mu.Unlock()

	// Metrics scrape.
	code, body = httpDo(t, http.MethodGet, base+"/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`ecarotator_rotations_total{app="billing",outcome="ok",step="finish"} 1`,
		`ecarotator_rotation_duration_seconds_count{app="billing"`,
		`ecarotator_last_success_timestamp_seconds{app="billing"}`,
		`ecarotator_next_rotation_timestamp_seconds{app="support"}`,
		`ecarotator_salesforce_api_requests_used{org="devhub"}`,
		`ecarotator_webhook_deliveries_total{outcome="ok",webhook="ops"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range append(e.secretsSeen(), hmacKey) {
		if strings.Contains(body, secret) || strings.Contains(e.logs.String(), secret) {
			t.Errorf("a secret appears in the metrics or logs")
		}
	}

	// A bad config on reload keeps the running one.
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(good, []byte("\nbogus_key: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil {
		t.Fatal("Reload of an invalid config: want an error")
	}
	if code, _ := httpDo(t, http.MethodGet, base+"/api/v1/apps/analytics", e.getenv("VAULT_TOKEN"), ""); code != http.StatusOK {
		t.Fatalf("after a rejected reload, analytics: %d", code)
	}
	// A valid reload that drops an app takes effect.
	trimmed := strings.Replace(string(good), "  - name: analytics", "  - name: analytics\n    disabled: true", 1)
	if err := os.WriteFile(cfgPath, []byte(trimmed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, _ := httpDo(t, http.MethodGet, base+"/api/v1/apps/analytics", e.getenv("VAULT_TOKEN"), ""); code != http.StatusNotFound {
		t.Fatalf("after reload without analytics: got %d, want 404", code)
	}
}
