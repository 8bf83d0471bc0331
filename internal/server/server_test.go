package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/rotator"
)

const operatorToken = "hvs.operator-token-never-echoed"

type fakeStatus struct {
	mu        sync.Mutex
	planNames []string
	err       error
}

func (f *fakeStatus) Apps(context.Context) ([]AppStatus, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []AppStatus{{Name: "billing", DevHub: "prod", ECA: "Billing_ECA", VaultPath: "salesforce/billing"}}, nil
}

func (f *fakeStatus) App(_ context.Context, name string) (AppDetail, error) {
	if name != "billing" {
		return AppDetail{}, fmt.Errorf("status: %s: %w", name, rotator.ErrNotFound)
	}
	return AppDetail{AppStatus: AppStatus{Name: "billing"}, Schedule: "@weekly"}, nil
}

func (f *fakeStatus) Plan(_ context.Context, names []string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planNames = names
	return []map[string]string{{"app": "billing", "decision": "NotDue"}}, nil
}

// fakeController records calls; block, when set, is waited on inside
// RotateNow (entered is signalled first).
type fakeController struct {
	mu      sync.Mutex
	calls   []string
	actor   rotator.Actor
	mfa     string
	err     error
	entered chan struct{}
	block   chan struct{}
}

func (f *fakeController) record(ctx context.Context, what, app string, actor rotator.Actor) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, what+" "+app)
	f.actor = actor
	f.mfa = MFACode(ctx).Reveal()
	err, entered, block := f.err, f.entered, f.block
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	if err != nil {
		return "", err
	}
	return "rot-42", nil
}

func (f *fakeController) RotateNow(ctx context.Context, app string, actor rotator.Actor) (string, error) {
	return f.record(ctx, "rotate", app, actor)
}

func (f *fakeController) RevokePrevious(ctx context.Context, app string, actor rotator.Actor) (string, error) {
	return f.record(ctx, "revoke", app, actor)
}

// authorizer accepts operatorToken for everything except the app "locked"
// and answers per its err field otherwise.
func authorizer(seen *[]string, err error) AuthorizerFunc {
	var mu sync.Mutex
	return func(_ context.Context, token rotator.Secret, app, action string) (string, error) {
		mu.Lock()
		*seen = append(*seen, app+"/"+action)
		mu.Unlock()
		if err != nil {
			return "", err
		}
		if token.Reveal() != operatorToken {
			return "", ErrUnauthenticated
		}
		if app == "locked" {
			return "", fmt.Errorf("policy: %w", ErrForbidden)
		}
		return "alice", nil
	}
}

type fixture struct {
	srv    *httptest.Server
	status *fakeStatus
	ctrl   *fakeController
	seen   []string
	logs   *observer.ObservedLogs
}

func newFixture(t *testing.T, authErr error, ready ...ReadyCheck) *fixture {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	f := &fixture{status: &fakeStatus{}, ctrl: &fakeController{}, logs: logs}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ecarotator_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s, err := New(Options{
		Addr: "127.0.0.1:0", Logger: zap.New(core), Gatherer: reg, Ready: ready,
		Status: f.status, Controller: f.ctrl, Authorizer: authorizer(&f.seen, authErr),
		MaxBodyBytes: 256,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

type answer struct {
	Status int
	Header http.Header
	Body   string
}

func (f *fixture) do(t *testing.T, method, path string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestProbesAndMetrics(t *testing.T) {
	vaultOK := true
	f := newFixture(t, nil,
		ReadyCheck{Name: "config", Check: func(context.Context) error { return nil }},
		ReadyCheck{Name: "vault", Check: func(context.Context) error {
			if !vaultOK {
				return errors.New("vault: token expired at secret/data/x")
			}
			return nil
		}},
	)
	tests := []struct {
		name       string
		path       string
		before     func()
		wantStatus int
		wantBody   string
	}{
		{"healthz answers ok", "/healthz", nil, 200, `"status":"ok"`},
		{"readyz is ready when every check passes", "/readyz", nil, 200, `"vault":"ok"`},
		{"readyz is 503 when Vault is not authenticated", "/readyz", func() { vaultOK = false }, 503, `"vault":"failing"`},
		{"metrics serves the registry", "/metrics", nil, 200, "ecarotator_test_total 1"},
		{"an unknown route is a JSON 404", "/nope", nil, 404, `"code":"not_found"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			a := f.do(t, "GET", tt.path, map[string]string{"X-Vault-Token": operatorToken}, "")
			if a.Status != tt.wantStatus || !strings.Contains(a.Body, tt.wantBody) {
				t.Errorf("GET %s = %d %s, want %d with %s", tt.path, a.Status, a.Body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(a.Body, "token expired") {
				t.Errorf("readiness echoed an error's text: %s", a.Body)
			}
		})
	}
}

func TestReadAPI(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"the app list is JSON", "/api/v1/apps", 200, `"apps":[{"name":"billing","devhub":"prod"`},
		{"one app has its detail", "/api/v1/apps/billing", 200, `"schedule":"@weekly"`},
		{"an unknown app is 404", "/api/v1/apps/ghost", 404, `"code":"not_found"`},
		{"plan passes the named apps", "/api/v1/plan?app=a,b&app=c", 200, `"plan":[{"app":"billing","decision":"NotDue"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "GET", tt.path, map[string]string{"X-Vault-Token": operatorToken}, "")
			if a.Status != tt.wantStatus || !strings.Contains(a.Body, tt.wantBody) {
				t.Errorf("GET %s = %d %s, want %d with %s", tt.path, a.Status, a.Body, tt.wantStatus, tt.wantBody)
			}
			if a.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", a.Header.Get("Content-Type"))
			}
		})
	}
	if got := fmt.Sprint(f.status.planNames); got != "[a b c]" {
		t.Errorf("plan names %s, want [a b c]", got)
	}
	t.Run("a status failure is a JSON 500 with the request id", func(t *testing.T) {
		f.status.err = errors.New("vault: read secret/data/salesforce/billing: boom")
		a := f.do(t, "GET", "/api/v1/apps", map[string]string{"X-Vault-Token": operatorToken}, "")
		var body ErrorBody
		if err := json.Unmarshal([]byte(a.Body), &body); err != nil {
			t.Fatal(err)
		}
		if a.Status != 500 || body.Code != CodeInternal || body.RequestID == "" || body.RequestID != a.Header.Get(HeaderRequestID) {
			t.Errorf("got %d %+v (header id %q)", a.Status, body, a.Header.Get(HeaderRequestID))
		}
		if strings.Contains(a.Body, "secret/data") {
			t.Errorf("500 echoed the cause: %s", a.Body)
		}
	})
}

func TestActions(t *testing.T) {
	vaultHdr := map[string]string{"X-Vault-Token": operatorToken}
	bearerHdr := map[string]string{"Authorization": "Bearer " + operatorToken}
	body := `{"reason":"incident 42","mfa_code":"123456"}`
	tests := []struct {
		name       string
		path       string
		header     map[string]string
		body       string
		authErr    error
		ctrlErr    error
		wantStatus int
		wantCode   string
		wantCall   string
	}{
		{"no token is 401", "/api/v1/apps/billing/rotate", nil, body, nil, nil, 401, CodeUnauthenticated, ""},
		{"a token in X-Vault-Token is accepted with 202", "/api/v1/apps/billing/rotate", vaultHdr, body, nil, nil, 202, "", "rotate billing"},
		{"a bearer token is accepted too", "/api/v1/apps/billing/revoke-previous", bearerHdr, body, nil, nil, 202, "", "revoke billing"},
		{"an invalid token is 401", "/api/v1/apps/billing/rotate", map[string]string{"X-Vault-Token": "hvs.wrong"}, body, nil, nil, 401, CodeUnauthenticated, ""},
		{"a token without the capability is 403", "/api/v1/apps/locked/rotate", vaultHdr, body, nil, nil, 403, CodeForbidden, ""},
		{"Vault failing to answer is 503", "/api/v1/apps/billing/rotate", vaultHdr, body, errors.New("dial tcp: refused"), nil, 503, CodeUnavailable, ""},
		{"a missing body is 400", "/api/v1/apps/billing/rotate", vaultHdr, "", nil, nil, 400, CodeBadRequest, ""},
		{"a missing reason is 400", "/api/v1/apps/billing/rotate", vaultHdr, `{"reason":"  "}`, nil, nil, 400, CodeBadRequest, ""},
		{"an unknown field is 400", "/api/v1/apps/billing/rotate", vaultHdr, `{"reason":"x","force":true}`, nil, nil, 400, CodeBadRequest, ""},
		{"an oversized body is 413", "/api/v1/apps/billing/rotate", vaultHdr, `{"reason":"` + strings.Repeat("x", 400) + `"}`, nil, nil, 413, CodeTooLarge, ""},
		{"an operation in flight is 409", "/api/v1/apps/billing/rotate", vaultHdr, body, nil, fmt.Errorf("engine: %w", rotator.ErrInFlight), 409, CodeConflict, "rotate billing"},
		{"an unknown app is 404", "/api/v1/apps/ghost/rotate", vaultHdr, body, nil, fmt.Errorf("engine: %w", rotator.ErrNotFound), 404, CodeNotFound, "rotate ghost"},
		{"a wrong MFA code is 403 mfa_required", "/api/v1/apps/billing/revoke-previous", vaultHdr, body, nil, ErrMFA, 403, CodeMFARequired, "revoke billing"},
		{"GET on an action route is a JSON 405", "/api/v1/apps/billing/rotate", vaultHdr, "", nil, nil, 405, CodeBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.authErr)
			f.ctrl.err = tt.ctrlErr
			method := "POST"
			if tt.wantStatus == 405 {
				method = "GET"
			}
			a := f.do(t, method, tt.path, tt.header, tt.body)
			if a.Status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", method, tt.path, a.Status, a.Body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				var eb ErrorBody
				if err := json.Unmarshal([]byte(a.Body), &eb); err != nil || eb.Code != tt.wantCode || eb.RequestID == "" {
					t.Errorf("error body %s, want code %s with a request id", a.Body, tt.wantCode)
				}
			}
			if tt.wantStatus == 401 && a.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if got := strings.Join(f.ctrl.calls, ";"); got != tt.wantCall {
				t.Errorf("controller calls %q, want %q", got, tt.wantCall)
			}
			if tt.wantStatus == 202 {
				var acc Accepted
				if err := json.Unmarshal([]byte(a.Body), &acc); err != nil {
					t.Fatal(err)
				}
				if acc.ID != "rot-42" || acc.RequestID == "" || acc.RequestID != a.Header.Get(HeaderRequestID) {
					t.Errorf("accepted %+v", acc)
				}
				want := rotator.Actor{Kind: rotator.ActorOperator, Identity: "alice", Reason: "incident 42"}
				if f.ctrl.actor != want || f.ctrl.mfa != "123456" {
					t.Errorf("controller saw actor %+v mfa %q, want %+v and the code", f.ctrl.actor, f.ctrl.mfa, want)
				}
				wantAction := ActionRotate
				if strings.HasSuffix(tt.path, "revoke-previous") {
					wantAction = ActionRevoke
				}
				if got := fmt.Sprint(f.seen); got != "[billing/"+wantAction+"]" {
					t.Errorf("authorizer saw %s", got)
				}
			}
			// The token is never echoed or logged, whatever the outcome.
			dump := a.Body + fmt.Sprint(a.Header)
			for _, e := range f.logs.All() {
				dump += e.Message + fmt.Sprint(e.ContextMap())
			}
			if strings.Contains(dump, operatorToken) {
				t.Errorf("token leaked into the answer or logs: %s", dump)
			}
		})
	}
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	ctrl := &fakeController{entered: make(chan struct{}, 1), block: make(chan struct{})}
	var seen []string
	s, err := New(Options{Addr: "127.0.0.1:0", Controller: ctrl, Authorizer: authorizer(&seen, nil), ShutdownTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}

	// An operator action is in flight when the daemon is asked to stop.
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/v1/apps/billing/rotate", strings.NewReader(`{"reason":"r"}`))
		req.Header.Set("X-Vault-Token", operatorToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-ctrl.entered
	cancel()
	close(ctrl.block)
	if code := <-got; code != http.StatusAccepted {
		t.Errorf("in-flight request got %d, want 202", code)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after Run returned")
	}
}

func TestRunShutdownIsBounded(t *testing.T) {
	ctrl := &fakeController{entered: make(chan struct{}, 1), block: make(chan struct{})}
	t.Cleanup(func() { close(ctrl.block) })
	var seen []string
	s, err := New(Options{Addr: "127.0.0.1:0", Controller: ctrl, Authorizer: authorizer(&seen, nil), ShutdownTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	go func() {
		req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+"/api/v1/apps/billing/rotate", strings.NewReader(`{"reason":"r"}`))
		req.Header.Set("X-Vault-Token", operatorToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-ctrl.entered // a handler that will not finish
	cancel()
	if err := <-runErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want a shutdown deadline error", err)
	}
}

func TestListenReportsAPortClash(t *testing.T) {
	a, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Addr: a.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(t.Context()); err == nil {
		t.Error("Run on a taken port succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Errorf("Run with a done context = %v, want nil", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no address", Options{}},
		{"a cert without a key", Options{Addr: ":0", TLSCert: "c.pem"}},
		{"a negative timeout", Options{Addr: ":0", ShutdownTimeout: -1}},
		{"a readiness check without a function", Options{Addr: ":0", Ready: []ReadyCheck{{Name: "vault"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
