package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// manyStatus lists n apps from memory and counts the lines it built.
type manyStatus struct {
	fakeStatus
	names   []string
	built   atomic.Int64
	block   chan struct{} // when set, AppsNamed waits on it
	waiting atomic.Int64  // requests inside AppsNamed
}

func newManyStatus(n int) *manyStatus {
	s := &manyStatus{}
	for i := range n {
		s.names = append(s.names, fmt.Sprintf("app%05d", i))
	}
	return s
}

func (m *manyStatus) AppNames() []string { return m.names }

func (m *manyStatus) Apps(context.Context) ([]AppStatus, error) {
	panic("a paged listing must not build every app's line")
}

func (m *manyStatus) AppsNamed(_ context.Context, names []string) ([]AppStatus, error) {
	if m.block != nil {
		m.waiting.Add(1)
		<-m.block
	}
	out := make([]AppStatus, len(names))
	for i, n := range names {
		out[i] = AppStatus{Name: n}
	}
	m.built.Add(int64(len(names)))
	return out, nil
}

// batchCaps answers capabilities for many paths in one call and counts the
// calls; token "hvs.odd" may read only odd-numbered apps.
type batchCaps struct {
	calls, lookups atomic.Int64
	gate           chan struct{} // when set, CapabilitiesMany waits on it
}

func (b *batchCaps) Capabilities(context.Context, rotator.Secret, string) ([]string, error) {
	panic("one call per app: the batch path was not used")
}

func (b *batchCaps) CapabilitiesMany(_ context.Context, token rotator.Secret, paths []string) (map[string][]string, error) {
	b.calls.Add(1)
	if b.gate != nil {
		<-b.gate
	}
	out := map[string][]string{}
	for i, p := range paths {
		switch {
		case token.Reveal() == "hvs.all":
			out[p] = []string{"read"}
		case token.Reveal() == "hvs.odd" && i%2 == 1: // pages start at app00000
			out[p] = []string{"read"}
		default:
			out[p] = []string{"deny"}
		}
	}
	return out, nil
}

func (b *batchCaps) TokenIdentity(context.Context, rotator.Secret) (string, error) {
	b.lookups.Add(1)
	return "reader", nil
}

func newLoadServer(t *testing.T, st Status, caps *batchCaps, maxInFlight int) *httptest.Server {
	t.Helper()
	s, err := New(Options{Addr: "127.0.0.1:0", Status: st, MaxInFlight: maxInFlight,
		Authorizer: &VaultAuthorizer{Caps: caps, Identity: caps, ControlPath: func(app, action string) string {
			return "secret/data/ecarotator/control/" + app + "/" + action
		}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type listing struct {
	Apps []AppStatus `json:"apps"`
	Next string      `json:"next"`
}

func getList(t *testing.T, url, token string) (int, listing, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l listing
	_ = json.NewDecoder(resp.Body).Decode(&l)
	return resp.StatusCode, l, resp.Header
}

func TestListingIsPagedAndFollowingNextVisitsEveryAppOnce(t *testing.T) {
	st := newManyStatus(2500)
	caps := &batchCaps{}
	srv := newLoadServer(t, st, caps, 0)

	code, l, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.all")
	if code != 200 || len(l.Apps) != DefaultPageSize || l.Next != "app00099" {
		t.Fatalf("first page: status %d, %d apps, next %q; want 200, %d, app00099", code, len(l.Apps), l.Next, DefaultPageSize)
	}
	if got := st.built.Load(); got != DefaultPageSize {
		t.Fatalf("built %d lines for one page, want %d", got, DefaultPageSize)
	}
	var seen []string
	after := ""
	for range 10 {
		u := srv.URL + "/api/v1/apps?limit=1000"
		if after != "" {
			u += "&after=" + after
		}
		code, l, _ := getList(t, u, "hvs.all")
		if code != 200 {
			t.Fatalf("page after %q: status %d", after, code)
		}
		for _, a := range l.Apps {
			seen = append(seen, a.Name)
		}
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if !slices.Equal(seen, st.names) {
		t.Fatalf("pages visited %d apps, want all %d in order", len(seen), len(st.names))
	}
}

func TestListingRejectsABadLimit(t *testing.T) {
	srv := newLoadServer(t, newManyStatus(3), &batchCaps{}, 0)
	for _, q := range []string{"limit=0", "limit=-1", "limit=1001", "limit=x"} {
		if code, _, _ := getList(t, srv.URL+"/api/v1/apps?"+q, "hvs.all"); code != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400", q, code)
		}
	}
}

func TestAPageIsAuthorisedInOneVaultCallThenFromTheCache(t *testing.T) {
	caps := &batchCaps{}
	srv := newLoadServer(t, newManyStatus(10000), caps, 0)
	for range 20 {
		if code, l, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.all"); code != 200 || len(l.Apps) != DefaultPageSize {
			t.Fatalf("status %d, %d apps", code, len(l.Apps))
		}
	}
	if c, l := caps.calls.Load(), caps.lookups.Load(); c != 1 || l != 1 {
		t.Fatalf("20 listings of one page asked Vault %d capability and %d lookup calls, want 1 and 1", c, l)
	}
}

func TestAPageListsOnlyTheAppsTheTokenMayRead(t *testing.T) {
	caps := &batchCaps{}
	srv := newLoadServer(t, newManyStatus(10), caps, 0)
	code, l, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.odd")
	if code != 200 || len(l.Apps) != 5 {
		t.Fatalf("status %d, %d apps; want 200 and the 5 readable ones", code, len(l.Apps))
	}
	for _, a := range l.Apps {
		if (a.Name[len(a.Name)-1]-'0')%2 != 1 {
			t.Fatalf("listed %s, which the token may not read", a.Name)
		}
	}
	if code, _, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.none"); code != http.StatusForbidden {
		t.Fatalf("a token that reads nothing: status %d, want 403", code)
	}
}

func TestConcurrentColdRequestsShareOneAuthorisation(t *testing.T) {
	caps := &batchCaps{gate: make(chan struct{})}
	srv := newLoadServer(t, newManyStatus(300), caps, 0)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { codes[i], _, _ = getList(t, srv.URL+"/api/v1/apps", "hvs.all") })
	}
	// Every request is in: either waiting in the shared call or about to.
	until(t, func() bool { return caps.calls.Load() > 0 })
	close(caps.gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: status %d", i, c)
		}
	}
	if c := caps.calls.Load(); c > 2 {
		t.Fatalf("%d concurrent cold requests made %d capability calls, want them shared", n, c)
	}
}

func TestExcessRequestsAreShedWith503AndRetryAfter(t *testing.T) {
	st := newManyStatus(3)
	st.block = make(chan struct{})
	caps := &batchCaps{}
	srv := newLoadServer(t, st, caps, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			code, _, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.all")
			if code != 200 {
				t.Errorf("held request: status %d", code)
			}
		})
	}
	// The 4 slots are taken: the fifth request is shed at once.
	until(t, func() bool { return st.waiting.Load() == 4 })
	code, _, hdr := getList(t, srv.URL+"/api/v1/apps", "hvs.all")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("fifth request: status %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	// Probes are never shed.
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz while the API is full: %v %v", resp, err)
	}
	resp.Body.Close()
	close(st.block)
	wg.Wait()
	if code, _, _ := getList(t, srv.URL+"/api/v1/apps", "hvs.all"); code != 200 {
		t.Fatalf("after the load: status %d, want 200", code)
	}
}

// until polls cond (a condition other goroutines make true) with a
// deadline.
func until(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}
