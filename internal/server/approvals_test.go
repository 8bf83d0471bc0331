package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
)

// fakeApprovals keeps approvals in memory: code "good" passes, anything
// else is a wrong second factor.
type fakeApprovals struct {
	mu    sync.Mutex
	byID  map[string]*ApprovalInfo
	calls []string
}

func (f *fakeApprovals) Request(_ context.Context, app, action string, requester rotator.Actor, code rotator.Secret) (ApprovalInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "request "+app+" by "+requester.Identity)
	if code.Reveal() != "good" {
		return ApprovalInfo{}, fmt.Errorf("fake: %w", ErrMFA)
	}
	a := &ApprovalInfo{ID: "ap1", Action: action, App: app, Requester: requester.Identity, Status: "pending", Expires: time.Unix(0, 0)}
	f.byID[a.ID] = a
	return *a, nil
}

func (f *fakeApprovals) Lookup(_ context.Context, id string) (ApprovalInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.byID[id]
	if !ok {
		return ApprovalInfo{}, fmt.Errorf("fake %s: %w", id, rotator.ErrNotFound)
	}
	return *a, nil
}

func (f *fakeApprovals) Approve(_ context.Context, id string, approver rotator.Actor, code rotator.Secret) (ApprovalInfo, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "approve "+id+" by "+approver.Identity)
	a := f.byID[id]
	switch {
	case a.Status != "pending":
		return *a, "", ErrApprovalClosed
	case approver.Identity == a.Requester:
		return *a, "", ErrSameOperator
	case code.Reveal() != "good":
		return *a, "", fmt.Errorf("fake: %w", ErrMFA)
	}
	a.Status, a.Approver = "approved", approver.Identity
	return *a, "op-7", nil
}

func newApprovalServer(t *testing.T, identity *string) (*httptest.Server, *fakeApprovals, *fakeController) {
	t.Helper()
	ap := &fakeApprovals{byID: map[string]*ApprovalInfo{}}
	ctrl := &fakeController{}
	auth := AuthorizerFunc(func(_ context.Context, token rotator.Secret, app, action string) (string, error) {
		if token.Reveal() != operatorToken {
			return "", ErrUnauthenticated
		}
		return *identity, nil
	})
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: zap.NewNop(), Controller: ctrl, Authorizer: auth, Approvals: ap})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, ap, ctrl
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestRevokePreviousOpensAnApprovalAndASecondOperatorApprovesIt(t *testing.T) {
	identity := "alice"
	srv, ap, ctrl := newApprovalServer(t, &identity)
	revoke := srv.URL + "/api/v1/apps/billing/revoke-previous"
	approve := srv.URL + "/api/v1/approvals/ap1/approve"

	tests := []struct {
		name       string
		as         string
		url, token string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"revoke without a code needs mfa", "alice", revoke, operatorToken, `{"reason":"leak"}`, http.StatusForbidden, CodeMFARequired},
		{"revoke with a wrong code needs mfa", "alice", revoke, operatorToken, `{"reason":"leak","mfa_code":"bad"}`, http.StatusForbidden, CodeMFARequired},
		{"revoke with a code opens an approval", "alice", revoke, operatorToken, `{"reason":"leak","mfa_code":"good"}`, http.StatusAccepted, ""},
		{"approving without a token is unauthenticated", "bob", approve, "", `{"mfa_code":"good"}`, http.StatusUnauthorized, CodeUnauthenticated},
		{"approving an unknown id is not found", "bob", srv.URL + "/api/v1/approvals/nope/approve", operatorToken, `{"mfa_code":"good"}`, http.StatusNotFound, CodeNotFound},
		{"approving without a code needs mfa", "bob", approve, operatorToken, `{}`, http.StatusForbidden, CodeMFARequired},
		{"the requester approving is forbidden", "alice", approve, operatorToken, `{"mfa_code":"good"}`, http.StatusForbidden, CodeForbidden},
		{"a wrong second factor needs mfa", "bob", approve, operatorToken, `{"mfa_code":"bad"}`, http.StatusForbidden, CodeMFARequired},
		{"a second operator approves", "bob", approve, operatorToken, `{"mfa_code":"good","reason":"confirmed"}`, http.StatusAccepted, ""},
		{"approving twice conflicts", "carol", approve, operatorToken, `{"mfa_code":"good"}`, http.StatusConflict, CodeConflict},
	}
	for _, tt := range tests {
		identity = tt.as
		status, body := post(t, tt.url, tt.token, tt.body)
		if status != tt.wantStatus || (tt.wantCode != "" && body["code"] != tt.wantCode) {
			t.Errorf("%s: status %d code %v, want %d %s (body %v)", tt.name, status, body["code"], tt.wantStatus, tt.wantCode, body)
		}
	}
	if len(ctrl.calls) != 0 {
		t.Errorf("the controller was called directly: %v", ctrl.calls)
	}
	if a := ap.byID["ap1"]; a == nil || a.Status != "approved" || a.Approver != "bob" {
		t.Errorf("approval = %+v", a)
	}
}

func TestApprovalAnswersCarryTheOperationID(t *testing.T) {
	identity := "alice"
	srv, _, _ := newApprovalServer(t, &identity)
	if status, _ := post(t, srv.URL+"/api/v1/apps/billing/revoke-previous", operatorToken, `{"reason":"leak","mfa_code":"good"}`); status != http.StatusAccepted {
		t.Fatalf("request: %d", status)
	}
	identity = "bob"
	status, body := post(t, srv.URL+"/api/v1/approvals/ap1/approve", operatorToken, `{"mfa_code":"good"}`)
	if status != http.StatusAccepted || body["operation_id"] != "op-7" || body["status"] != "approved" {
		t.Errorf("approve answer %d %v", status, body)
	}
}
