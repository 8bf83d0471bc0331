package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/server"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/rotator/rotatortest"
)

// Known secrets of the fixture: none may appear on any page.
const (
	goodToken   = "hvs.auditor-token-0123456789"
	readerToken = "hvs.reads-billing-only-0123"
	planted     = "S3CRET-consumer-secret-do-not-show"
)

// fakeStatus is the daemon's status provider.
type fakeStatus struct{ now time.Time }

func (f fakeStatus) Apps(ctx context.Context) ([]server.AppStatus, error) { return nil, nil }
func (f fakeStatus) App(_ context.Context, name string) (server.AppDetail, error) {
	d := server.AppDetail{AppStatus: server.AppStatus{Name: name, DevHub: "devhub", ECA: strings.ToUpper(name[:1]) + name[1:],
		VaultPath: "salesforce/" + name, ConsumerKey: "3MVG9-public-" + name, Strategy: "staged",
		NextRotation: f.now.Add(24 * time.Hour), NextReason: "Schedule"}, MaxAge: "720h0m0s"}
	switch name {
	case "billing":
		d.LastRotation = f.now.Add(-48 * time.Hour)
		d.PreviousValidUntil = f.now.Add(24 * time.Hour)
	case "support":
		d.LastRotation = f.now.Add(-40 * 24 * time.Hour) // past max age
	case "analytics":
		d.LastError = "verify: token endpoint refused the new pair"
	}
	return d, nil
}
func (f fakeStatus) Plan(context.Context, []string) (any, error) { return nil, nil }

// fakeReader decides like server.CanRead: goodToken reads every app,
// readerToken only billing, anything else is not a valid token.
type fakeReader struct {
	mu      sync.Mutex
	revoked bool
	calls   int
}

func (r *fakeReader) CanRead(_ context.Context, token rotator.Secret, apps []string) ([]string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	switch {
	case r.revoked, token.Reveal() != goodToken && token.Reveal() != readerToken:
		return nil, "", server.ErrUnauthenticated
	case token.Reveal() == readerToken:
		if slices.Contains(apps, "billing") {
			return []string{"billing"}, "entity:reader", nil
		}
		return nil, "", server.ErrForbidden
	}
	return apps, "entity:auditor", nil
}

type fixture struct {
	srv    *httptest.Server
	reader *fakeReader
	clock  *rotatortest.Clock
	c      *Console
}

// newFixture serves a console over an audit log holding rotations of
// three apps, an open and a closed approval.
func newFixture(t *testing.T, secure bool) *fixture {
	t.Helper()
	clk := rotatortest.NewClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	file := filepath.Join(t.TempDir(), "audit.log")
	mac, err := audit.LocalKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(t.Context(), audit.Options{File: file, MAC: mac, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(e rotator.Event) {
		t.Helper()
		if e.Time.IsZero() {
			e.Time = clk.Now()
		}
		if err := l.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	sched := rotator.Actor{Kind: rotator.ActorScheduler, Reason: "schedule"}
	op := rotator.Actor{Kind: rotator.ActorOperator, Identity: "entity:alice", Reason: "incident 42"}
	for i, app := range []string{"billing", "support", "analytics"} {
		rid := fmt.Sprintf("rid-%d", i)
		rec(rotator.Event{Type: rotator.EventRotationStarted, App: app, RotationID: rid, Actor: sched, Outcome: rotator.OutcomeOK, Time: clk.Now().Add(-time.Duration(3-i) * time.Hour)})
		rec(rotator.Event{Type: rotator.EventStepCompleted, App: app, RotationID: rid, Step: rotator.StepVerify, Actor: sched, Outcome: rotator.OutcomeOK, Time: clk.Now().Add(-time.Duration(3-i) * time.Hour)})
		typ := rotator.EventRotationSucceeded
		if app == "analytics" {
			typ = rotator.EventRotationFailed
		}
		rec(rotator.Event{Type: typ, App: app, RotationID: rid, Actor: sched, Outcome: rotator.OutcomeOK, Time: clk.Now().Add(-time.Duration(3-i) * time.Hour)})
	}
	rec(rotator.Event{Type: rotator.EventRotationSucceeded, App: "billing", RotationID: "rid-op", Actor: op, Outcome: rotator.OutcomeOK})
	exp := clk.Now().Add(time.Hour).Format(time.RFC3339)
	rec(rotator.Event{Type: rotator.EventApprovalRequested, App: "billing", Actor: op, Outcome: rotator.OutcomeOK,
		Details: map[string]string{"approval_id": "ap-open", "action": "revoke", "requester": "entity:alice", "expires": exp, "request_reason": "leak suspected"}})
	rec(rotator.Event{Type: rotator.EventApprovalRequested, App: "support", Actor: op, Outcome: rotator.OutcomeOK,
		Details: map[string]string{"approval_id": "ap-done", "action": "revoke", "requester": "entity:alice", "expires": exp}})
	rec(rotator.Event{Type: rotator.EventApprovalGranted, App: "support", Actor: rotator.Actor{Kind: rotator.ActorOperator, Identity: "entity:bob"}, Outcome: rotator.OutcomeOK,
		Details: map[string]string{"approval_id": "ap-done", "action": "revoke"}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	reader := &fakeReader{}
	c, err := New(Options{
		Status: fakeStatus{now: clk.Now()}, Reader: reader, AuditFile: file, Secure: secure, Now: clk.Now,
		Names: func(context.Context) ([]string, error) { return []string{"billing", "support", "analytics"}, nil },
		Versions: func(_ context.Context, app string) ([]rotator.VersionInfo, error) {
			return []rotator.VersionInfo{{Version: 1, CreatedAt: clk.Now().Add(-72 * time.Hour)}, {Version: 2, CreatedAt: clk.Now().Add(-3 * time.Hour)}}, nil
		},
		Verify: func(ctx context.Context, token rotator.Secret) (*audit.VerifyResult, error) {
			return audit.VerifyFile(ctx, file, audit.VerifyOptions{MAC: mac, Sig: audit.MACSigner(mac)})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, reader: reader, clock: clk, c: c}
}

// client is a browser without JavaScript: a cookie jar, no redirects
// followed automatically unless asked.
func (f *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var nonceRE = regexp.MustCompile(`name="(?:nonce|csrf)" value="([0-9a-f]+)"`)

func hidden(t *testing.T, page string) string {
	t.Helper()
	m := nonceRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no hidden token in page:\n%s", page)
	}
	return m[1]
}

// login logs c in with token and returns the overview page.
func (f *fixture) login(t *testing.T, c *http.Client, token string) (*http.Response, string) {
	t.Helper()
	_, _, page := get(t, c, f.srv.URL+"/ui/login")
	resp, body := post(t, c, f.srv.URL+"/ui/login", url.Values{"token": {token}, "nonce": {hidden(t, page)}})
	return resp, body
}

func TestLoginExchangesTheTokenForAServerSideSession(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			f := newFixture(t, secure)
			c := f.client(t)
			resp, _ := f.login(t, c, goodToken)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
				t.Fatalf("login: got %d to %q, want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
			}
			var sess *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == cookieSession {
					sess = ck
				}
			}
			if sess == nil {
				t.Fatal("no session cookie")
			}
			if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || sess.Secure != secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, Secure=%v", sess, secure)
			}
			if strings.Contains(sess.Value, goodToken) || len(sess.Value) != 64 {
				t.Errorf("cookie value is not a random session id")
			}
			if f.c.sessions.len() != 1 {
				t.Errorf("sessions: got %d, want 1", f.c.sessions.len())
			}
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		nonce  func(page string) string
		status int
		says   string
	}{
		{"a token Vault does not accept", "hvs.wrong", nil, http.StatusUnauthorized, "Vault does not accept this token"},
		{"an empty token", "", nil, http.StatusUnauthorized, "paste a valid Vault token"},
		{"a token with control characters", "hvs.\x1b[2J", nil, http.StatusUnauthorized, "paste a valid Vault token"},
		{"a token too long", strings.Repeat("a", maxTokenLen+1), nil, http.StatusUnauthorized, "paste a valid Vault token"},
		{"a form without the login nonce (login CSRF)", goodToken, func(string) string { return "" }, http.StatusForbidden, "login form expired"},
		{"a form with another nonce", goodToken, func(string) string { return strings.Repeat("0", 64) }, http.StatusForbidden, "login form expired"},
	}
	f := newFixture(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t)
			_, _, page := get(t, c, f.srv.URL+"/ui/login")
			nonce := hidden(t, page)
			if tt.nonce != nil {
				nonce = tt.nonce(page)
			}
			resp, body := post(t, c, f.srv.URL+"/ui/login", url.Values{"token": {tt.token}, "nonce": {nonce}})
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.says) {
				t.Errorf("got %d, want %d saying %q", resp.StatusCode, tt.status, tt.says)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == cookieSession && ck.MaxAge >= 0 {
					t.Error("a session cookie was set")
				}
			}
			if tt.token != "" && strings.Contains(body, tt.token) {
				t.Error("the refused token is echoed")
			}
		})
	}
	if f.c.sessions.len() != 0 {
		t.Errorf("sessions after refusals: %d, want 0", f.c.sessions.len())
	}
}

func TestPagesNeedASession(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	for _, p := range []string{"/ui/", "/ui/apps/billing", "/ui/audit", "/ui/audit/export?format=csv", "/ui/approvals"} {
		code, h, _ := get(t, c, f.srv.URL+p)
		if code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
			t.Errorf("%s without a session: got %d to %q, want 303 to /ui/login", p, code, h.Get("Location"))
		}
	}
}

func TestLogoutNeedsTheSessionCSRFToken(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	_, _, page := get(t, c, f.srv.URL+"/ui/")
	resp, _ := post(t, c, f.srv.URL+"/ui/logout", url.Values{"csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: got %d, want 403", resp.StatusCode)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/"); code != http.StatusOK {
		t.Fatalf("session ended by a forged logout: %d", code)
	}
	resp, _ = post(t, c, f.srv.URL+"/ui/logout", url.Values{"csrf": {hidden(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: got %d, want 303", resp.StatusCode)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/"); code != http.StatusSeeOther {
		t.Errorf("after logout: got %d, want 303 to the login", code)
	}
	if f.c.sessions.len() != 0 {
		t.Errorf("sessions after logout: %d", f.c.sessions.len())
	}
}

func TestSessionsExpire(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	f.clock.Advance(DefaultSessionTTL - time.Second)
	if code, _, _ := get(t, c, f.srv.URL+"/ui/"); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	f.clock.Advance(time.Second)
	if code, h, _ := get(t, c, f.srv.URL+"/ui/"); code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
		t.Errorf("after expiry: got %d to %q", code, h.Get("Location"))
	}
}

func TestARevokedTokenEndsTheSession(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	f.reader.mu.Lock()
	f.reader.revoked = true
	f.reader.mu.Unlock()
	code, h, _ := get(t, c, f.srv.URL+"/ui/audit")
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/login?expired=1" {
		t.Errorf("revoked token: got %d to %q", code, h.Get("Location"))
	}
	if f.c.sessions.len() != 0 {
		t.Errorf("session kept after its token was refused")
	}
}

func TestOverviewShowsEveryStateAsColourAndText(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	code, h, page := get(t, c, f.srv.URL+"/ui/")
	if code != http.StatusOK {
		t.Fatalf("overview: %d", code)
	}
	for _, want := range []string{
		`<span class="badge st-ok">ok</span>`, `<span class="badge st-overdue">overdue</span>`, `<span class="badge st-failing">failing</span>`,
		"2d of 30d", "rotation.succeeded (ok)", "rotation.failed (ok)", "staged", "Signed in as <strong>entity:auditor</strong>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

func TestAReaderSeesOnlyTheAppsTheirTokenMayRead(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, readerToken)
	_, _, page := get(t, c, f.srv.URL+"/ui/")
	if !strings.Contains(page, "billing") || strings.Contains(page, ">support<") || strings.Contains(page, ">analytics<") {
		t.Errorf("overview shows apps the token may not read:\n%s", page)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/apps/support"); code != http.StatusNotFound {
		t.Errorf("unreadable app page: got %d, want 404", code)
	}
	_, _, trail := get(t, c, f.srv.URL+"/ui/audit")
	if strings.Contains(trail, "<td>support</td>") || strings.Contains(trail, "<td>analytics</td>") {
		t.Error("the audit trail shows records of unreadable apps")
	}
}

func TestAuditTrailFiltersVerifiesAndExports(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	q := "app=billing&event=rotation.succeeded&actor=operator"
	code, _, page := get(t, c, f.srv.URL+"/ui/audit?"+q)
	if code != http.StatusOK || !strings.Contains(page, "1 matching records") || !strings.Contains(page, "incident 42") {
		t.Fatalf("filtered trail: %d\n%s", code, page)
	}
	if !strings.Contains(page, `<span class="badge st-ok">verified</span>`) || !strings.Contains(page, "every record MAC checked") {
		t.Error("verification box missing or not verified")
	}
	code, h, body := get(t, c, f.srv.URL+"/ui/audit/export?format=csv&"+q)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != http.StatusOK || err != nil || len(rows) != 2 || !slices.Equal(rows[0], audit.CSVHeader) || rows[1][3] != "billing" {
		t.Errorf("CSV export: %d %v %q", code, err, body)
	}
	if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") {
		t.Errorf("CSV export is not a download: %q", h.Get("Content-Disposition"))
	}
	_, _, body = get(t, c, f.srv.URL+"/ui/audit/export?format=json&"+q)
	var recs []audit.Record
	if err := json.Unmarshal([]byte(body), &recs); err != nil || len(recs) != 1 || recs[0].RotationID != "rid-op" {
		t.Errorf("JSON export: %v %s", err, body)
	}
	_, _, body = get(t, c, f.srv.URL+"/ui/audit/export?format=json&app=nothing")
	if err := json.Unmarshal([]byte(body), &recs); err != nil || len(recs) != 0 {
		t.Errorf("empty JSON export: %v %q", err, body)
	}
	for _, bad := range []string{"since=yesterday", "until=2026-13-45", "actor=" + url.QueryEscape("\x1b[31m"), "actor=" + strings.Repeat("x", 300)} {
		code, _, page := get(t, c, f.srv.URL+"/ui/audit?"+bad)
		if code != http.StatusOK || !strings.Contains(page, `class="alert"`) {
			t.Errorf("%s: got %d without a problem shown", bad, code)
		}
		if code, _, _ := get(t, c, f.srv.URL+"/ui/audit/export?format=csv&"+bad); code != http.StatusBadRequest {
			t.Errorf("export with %s: got %d, want 400", bad, code)
		}
	}
	code, _, page = get(t, c, f.srv.URL+"/ui/audit?since=2026-11-30T10:30&until=2026-12-01")
	if code != http.StatusOK || strings.Contains(page, "rid-0") || !strings.Contains(page, "rid-2") {
		t.Errorf("time range filter: %d", code)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/audit/export?format=xml"); code != http.StatusBadRequest {
		t.Errorf("unknown export format: %d", code)
	}
}

func TestPendingApprovalsComeFromTheTrail(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	_, _, page := get(t, c, f.srv.URL+"/ui/approvals")
	if !strings.Contains(page, "ap-open") || !strings.Contains(page, "leak suspected") || strings.Contains(page, "ap-done") {
		t.Errorf("approvals page:\n%s", page)
	}
	f.clock.Advance(2 * time.Hour) // the open one expires (the session too: log in again)
	f.login(t, c, goodToken)
	if _, _, page := get(t, c, f.srv.URL+"/ui/approvals"); strings.Contains(page, "ap-open") {
		t.Error("an expired approval is still pending")
	}
}

func TestAppPageDrawsTheTimelineAndVersions(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	code, _, page := get(t, c, f.srv.URL+"/ui/apps/billing")
	if code != http.StatusOK || !strings.Contains(page, `<svg id="timeline"`) || strings.Count(page, `class="tl-ok"`) != 2 || strings.Count(page, `class="tl-ver"`) != 2 {
		t.Errorf("app page: %d\n%s", code, page)
	}
	if code, _, _ := get(t, c, f.srv.URL+"/ui/apps/nope"); code != http.StatusNotFound {
		t.Errorf("unknown app: %d", code)
	}
}

// TestNoPageHoldsASecretOrAToken reads every page and export, as a browser
// without JavaScript does: each is complete HTML, none holds the token,
// the planted secret or an inline script.
func TestNoPageHoldsASecretOrAToken(t *testing.T) {
	f := newFixture(t, false)
	c := f.client(t)
	f.login(t, c, goodToken)
	for _, p := range []string{"/ui/", "/ui/apps/billing", "/ui/apps/support", "/ui/apps/analytics", "/ui/audit", "/ui/audit?app=billing",
		"/ui/audit/export?format=csv", "/ui/audit/export?format=json", "/ui/approvals", "/ui/login", "/ui/nope"} {
		code, _, body := get(t, c, f.srv.URL+p)
		if code >= 500 {
			t.Errorf("%s: %d", p, code)
		}
		for _, s := range []string{goodToken, readerToken, planted} {
			if strings.Contains(body, s) {
				t.Errorf("%s holds %q", p, s)
			}
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s has an inline script", p)
		}
	}
}

func TestSessionStoreIsBounded(t *testing.T) {
	clk := rotatortest.NewClock(time.Unix(0, 0))
	s := newSessions(time.Minute, 3, clk.Now)
	var ids []string
	for i := range 5 {
		clk.Advance(time.Second)
		id, _ := s.create(rotator.NewSecret(fmt.Sprint("t", i)), "x")
		ids = append(ids, id)
	}
	if s.len() != 3 {
		t.Fatalf("sessions: %d, want 3", s.len())
	}
	if _, ok := s.get(ids[0]); ok {
		t.Error("the oldest session survived")
	}
	if _, ok := s.get(ids[4]); !ok {
		t.Error("the newest session was dropped")
	}
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without dependencies: no error")
	}
}
