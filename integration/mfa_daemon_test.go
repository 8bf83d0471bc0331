//go:build integration

package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/server"
)

// startMFADaemon runs a daemon in-process with EnableMFA, as `ecarotator
// run` does, and returns it with its base URL.
func (e *env) startMFADaemon(cfgPath string) (*daemon.Daemon, string) {
	e.t.Helper()
	return e.startDaemon(cfgPath, daemon.Options{}, (*daemon.Daemon).EnableMFA)
}

// TestMFAFlowsOverTheDaemonAPI: with mfa.enabled, rotate-now over the API
// needs the caller's own code (single use); revoke-previous opens an
// approval that only a second operator, with their own code, can grant;
// the daemon then revokes the previous pair.
func TestMFAFlowsOverTheDaemonAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	alice, bob := e.newOperator("alice"), e.newOperator("bob")
	e.enroll(alice)
	e.enroll(bob)
	cfgPath := e.writeDaemonConfig("mfa", daemonConfig{Overlap: "{policy: after, after: 1h}", Extra: "mfa:\n  enabled: true\n"})
	d, base := e.startMFADaemon(cfgPath)
	eventually(t, 10*time.Second, "readyz", func() bool {
		code, _ := httpDo(t, http.MethodGet, base+"/readyz", "", "")
		return code == http.StatusOK
	})
	rt := d.Runtime()

	rotate := base + "/api/v1/apps/billing/rotate"
	if code, body := httpDo(t, http.MethodPost, rotate, alice.token, `{"reason":"incident"}`); code != http.StatusForbidden || !strings.Contains(body, server.CodeMFARequired) {
		t.Fatalf("rotate without a code: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, rotate, alice.token, `{"reason":"incident","mfa_code":"`+wrong(alice.current(t))+`"}`); code != http.StatusForbidden || !strings.Contains(body, server.CodeMFARequired) {
		t.Fatalf("rotate with a wrong code: %d %s", code, body)
	}
	used := alice.code(t)
	if code, body := httpDo(t, http.MethodPost, rotate, alice.token, `{"reason":"incident","mfa_code":"`+used+`"}`); code != http.StatusAccepted {
		t.Fatalf("rotate with a code: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "billing rotated", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && !st.Previous.IsZero()
	})
	if code, body := httpDo(t, http.MethodPost, rotate, alice.token, `{"reason":"again","mfa_code":"`+used+`"}`); code != http.StatusForbidden {
		t.Fatalf("replayed code: %d %s", code, body)
	}
	st, _ := e.stored(rt, "billing")

	code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/billing/revoke-previous", alice.token, `{"reason":"leaked","mfa_code":"`+alice.code(t)+`"}`)
	var pending server.ApprovalAccepted
	if err := json.Unmarshal([]byte(body), &pending); code != http.StatusAccepted || err != nil || pending.Status != "pending_approval" || pending.Approval.ID == "" {
		t.Fatalf("revoke-previous: %d %s", code, body)
	}
	e.mustAuth("previous pair while the approval is pending", st.Previous, e.sim.TokenURL("devhub"))
	approve := base + "/api/v1/approvals/" + pending.Approval.ID + "/approve"
	if code, body := httpDo(t, http.MethodPost, approve, alice.token, `{"mfa_code":"`+alice.current(t)+`"}`); code != http.StatusForbidden || !strings.Contains(body, server.CodeForbidden) {
		t.Fatalf("the requester approving: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, approve, bob.token, `{"mfa_code":"`+alice.current(t)+`"}`); code != http.StatusForbidden || !strings.Contains(body, server.CodeMFARequired) {
		t.Fatalf("a wrong second factor: %d %s", code, body)
	}
	code, body = httpDo(t, http.MethodPost, approve, bob.token, `{"mfa_code":"`+bob.code(t)+`","reason":"confirmed"}`)
	var granted server.ApprovalAccepted
	if err := json.Unmarshal([]byte(body), &granted); code != http.StatusAccepted || err != nil || granted.OperationID == "" || granted.Approval.Approver != bob.identity() {
		t.Fatalf("approve: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "previous pair revoked", func() bool {
		st, _, err := rt.Vault.ReadCredentials(t.Context(), "salesforce/billing")
		return err == nil && st.Previous.IsZero()
	})
	e.mustReject("revoked previous pair", st.Previous, e.sim.TokenURL("devhub"))
	if code, body := httpDo(t, http.MethodPost, approve, bob.token, `{"mfa_code":"`+bob.current(t)+`"}`); code != http.StatusConflict {
		t.Fatalf("approving twice: %d %s", code, body)
	}
	if strings.Contains(e.logs.String(), alice.seed) || strings.Contains(e.logs.String(), bob.seed) {
		t.Error("a seed leaked into the daemon's log")
	}
}
