package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// countingAuth allows the tokens in allowed (per app) and counts the
// calls that reach "Vault".
type countingAuth struct {
	mu      sync.Mutex
	calls   int
	allowed map[string]map[string]bool // token → app → ok
	down    bool
}

func (c *countingAuth) Authorize(_ context.Context, token rotator.Secret, app, action string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return "", errors.New("vault: connection refused")
	}
	apps, ok := c.allowed[token.Reveal()]
	if !ok {
		return "", ErrUnauthenticated
	}
	if action != ActionStatus || !apps[app] {
		return "", fmt.Errorf("%w: %s on %s", ErrForbidden, action, app)
	}
	return "reader", nil
}

func (c *countingAuth) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

type countingStatus struct {
	fakeStatus
	plans int
}

func (c *countingStatus) AppNames() []string { return []string{"billing", "support"} }

func (c *countingStatus) Apps(context.Context) ([]AppStatus, error) {
	return []AppStatus{{Name: "billing"}, {Name: "support"}}, nil
}

func (c *countingStatus) Plan(ctx context.Context, names []string) (any, error) {
	c.mu.Lock()
	c.plans++
	c.mu.Unlock()
	return names, nil
}

type readFixture struct {
	srv    *httptest.Server
	auth   *countingAuth
	status *countingStatus
	clk    *rotatortest.Clock
}

func newReadFixture(t *testing.T) *readFixture {
	t.Helper()
	f := &readFixture{
		auth: &countingAuth{allowed: map[string]map[string]bool{
			"hvs.reader":  {"billing": true},
			"hvs.both":    {"billing": true, "support": true},
			"hvs.nothing": {},
		}},
		status: &countingStatus{},
		clk:    rotatortest.NewClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)),
	}
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: zap.NewNop(), Status: f.status, Authorizer: f.auth,
		AllowedHosts: []string{"ecarotator.internal.example"}, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *readFixture) get(t *testing.T, path, token, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestM2ReadAPINeedsReadOnTheStatusControlPath: the review's disclosure
// (inventory and keys to anyone who reaches the port) now answers 401/403;
// a token reads only the apps whose status path it may read.
func TestM2ReadAPINeedsReadOnTheStatusControlPath(t *testing.T) {
	f := newReadFixture(t)
	tests := []struct {
		name, path, token string
		want              int
		body, notBody     string
	}{
		{"no token: 401", "/api/v1/apps", "", 401, CodeUnauthenticated, "billing"},
		{"an invalid token: 401", "/api/v1/apps/billing", "hvs.revoked", 401, CodeUnauthenticated, "billing"},
		{"a token without read: 403", "/api/v1/apps/billing", "hvs.nothing", 403, CodeForbidden, "vault_path"},
		{"the list holds only readable apps", "/api/v1/apps", "hvs.reader", 200, `"billing"`, `"support"`},
		{"a token that reads both sees both", "/api/v1/apps", "hvs.both", 200, `"support"`, "\x00"},
		{"plan of an app the token may not read: 403", "/api/v1/plan?app=support", "hvs.reader", 403, CodeForbidden, "support\""},
		{"plan without a token: 401", "/api/v1/plan", "", 401, CodeUnauthenticated, "billing"},
	}
	for _, tt := range tests {
		code, body := f.get(t, tt.path, tt.token, "")
		if code != tt.want || !strings.Contains(body, tt.body) || strings.Contains(body, tt.notBody) {
			t.Errorf("%s: GET %s = %d %s; want %d with %q and without %q", tt.name, tt.path, code, body, tt.want, tt.body, tt.notBody)
		}
	}
	if f.status.plans != 0 {
		t.Errorf("%d plans computed for refused callers", f.status.plans)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := f.get(t, p, "", ""); code != 200 {
			t.Errorf("GET %s without a token = %d, want 200 (probes stay open)", p, code)
		}
	}
}

// TestM2DNSRebindingHostIsRefused: a page served under an attacker's host
// name that resolves to 127.0.0.1 reaches the API with its own Host.
func TestM2DNSRebindingHostIsRefused(t *testing.T) {
	f := newReadFixture(t)
	for host, want := range map[string]int{
		"rebind.attacker.example":          421,
		"rebind.attacker.example:9464":     421,
		"127.0.0.1:9464":                   200,
		"localhost:9464":                   200,
		"[::1]:9464":                       200,
		"ecarotator.internal.example:9464": 200,
	} {
		if code, body := f.get(t, "/api/v1/apps/billing", "hvs.reader", host); code != want {
			t.Errorf("Host %s: %d %s, want %d", host, code, body, want)
		}
	}
	if code, _ := f.get(t, "/healthz", "", "rebind.attacker.example"); code != 200 {
		t.Errorf("probe with a foreign Host = %d, want 200", code)
	}
}

// TestM2PlanIsCachedAndRateLimited: 60 plan calls (the review's budget
// exhaustion) compute at most DefaultPlanPerMinute plans, the rest are
// served from the cache or answered 429.
func TestM2PlanIsCachedAndRateLimited(t *testing.T) {
	f := newReadFixture(t)
	for i := 0; i < 60; i++ {
		if code, body := f.get(t, "/api/v1/plan", "hvs.both", ""); code != 200 {
			t.Fatalf("plan %d: %d %s", i, code, body)
		}
	}
	if f.status.plans != 1 {
		t.Errorf("60 identical plans computed %d times, want 1 (cache)", f.status.plans)
	}
	// Different app sets miss the cache; the limiter bounds them.
	limited := 0
	for i := 0; i < 20; i++ {
		path := fmt.Sprintf("/api/v1/plan?app=billing&app=billing%s", strings.Repeat(",billing", i))
		code, _ := f.get(t, path, "hvs.both", "")
		if code == 429 {
			limited++
		}
	}
	if f.status.plans > DefaultPlanPerMinute || limited == 0 {
		t.Errorf("plans computed %d (limit %d), 429 answers %d", f.status.plans, DefaultPlanPerMinute, limited)
	}
	f.clk.Advance(time.Minute)
	if code, _ := f.get(t, "/api/v1/plan?app=support", "hvs.both", ""); code != 200 {
		t.Errorf("after a minute the limiter still refuses: %d", code)
	}
}

// TestM2AuthorizationCacheTTL: allowed reads are cached per token for
// AuthCacheTTL (Vault asked once); a revoked token stops within the TTL;
// refusals and Vault errors are never cached as allowed.
func TestM2AuthorizationCacheTTL(t *testing.T) {
	f := newReadFixture(t)
	for i := 0; i < 10; i++ {
		if code, _ := f.get(t, "/api/v1/apps/billing", "hvs.reader", ""); code != 200 {
			t.Fatalf("read %d refused", i)
		}
	}
	if n := f.auth.n(); n != 1 {
		t.Errorf("10 reads asked Vault %d times, want 1", n)
	}
	// Revoke the token in "Vault": still served until the TTL ends, then 401.
	f.auth.mu.Lock()
	delete(f.auth.allowed, "hvs.reader")
	f.auth.mu.Unlock()
	f.clk.Advance(DefaultAuthCacheTTL - time.Second)
	if code, _ := f.get(t, "/api/v1/apps/billing", "hvs.reader", ""); code != 200 {
		t.Errorf("inside the TTL: %d, want the cached 200", code)
	}
	f.clk.Advance(time.Second)
	if code, _ := f.get(t, "/api/v1/apps/billing", "hvs.reader", ""); code != 401 {
		t.Errorf("revoked token after the TTL: %d, want 401", code)
	}
	// A refusal is asked again each time (never cached as allowed).
	before := f.auth.n()
	for i := 0; i < 3; i++ {
		if code, _ := f.get(t, "/api/v1/apps/support", "hvs.reader", ""); code == 200 {
			t.Fatal("a refused token read support")
		}
	}
	if f.auth.n()-before != 3 {
		t.Errorf("refusals asked Vault %d times, want 3", f.auth.n()-before)
	}
	// Vault down: 503, and the failure is not cached either.
	f.auth.mu.Lock()
	f.auth.down = true
	f.auth.mu.Unlock()
	if code, _ := f.get(t, "/api/v1/apps/billing", "hvs.both", ""); code != 503 {
		t.Errorf("vault down: %d, want 503", code)
	}
}

func TestAuthCacheIsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	c := newAuthCache(time.Minute, 16, func() time.Time { return now })
	for i := 0; i < 1000; i++ {
		c.put(rotator.NewSecret(fmt.Sprint("tok", i)), "billing", ActionStatus, "x")
		if c.len() > 16 {
			t.Fatalf("cache grew to %d entries, bound 16", c.len())
		}
	}
}

// TestReasonsWithControlCharactersAreRefused: review L9, an operator
// reason carrying an ESC sequence for the auditors' terminals.
func TestReasonsWithControlCharactersAreRefused(t *testing.T) {
	f := newFixture(t, nil)
	hdr := map[string]string{"X-Vault-Token": operatorToken}
	for _, reason := range []string{`incident\u001b[2K\u001b[1Aok`, `a\u0007b`, `x\u202etxt.exe`, `line\nbreak`} {
		a := f.do(t, "POST", "/api/v1/apps/billing/rotate", hdr, `{"reason":"`+reason+`"}`)
		if a.Status != 400 || !strings.Contains(a.Body, "control characters") {
			t.Errorf("reason %q: %d %s, want 400", reason, a.Status, a.Body)
		}
	}
	if got := StripControl("ok\x1b[2Kgone\u202e"); got != "ok[2Kgone" {
		t.Errorf("StripControl = %q", got)
	}
	if a := f.do(t, "POST", "/api/v1/apps/billing/rotate", hdr, `{"reason":"incident 42 – café"}`); a.Status != 202 {
		t.Errorf("a plain reason: %d %s", a.Status, a.Body)
	}
}
