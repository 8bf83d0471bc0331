package salesforce

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/rotator"
)

// Known test values. The secrets are distinctive so leak checks can grep
// for them.
const (
	testToken        = "00DTESTTOKEN!SECRETACCESSTOKEN"
	testSecret       = "S1-SUPERSECRET-PRIMARY"
	testStagedSecret = "S2-SUPERSECRET-STAGED"
	testClientSecret = "CC-SUPERSECRET-CLIENT"
	testApp          = "0xIAPP000000001"
	testConsumer     = "888CONSUMER0001"
	testStagedID     = "0ZzSTAGED000001"
	apiPrefix        = "/services/data/v65.0"
)

// testKey is one RSA key for the whole test binary (generation is slow
// under -race).
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func testKeyPEM() rotator.Secret {
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())})
	return rotator.NewSecret(string(b))
}

// recorded is one request the fake saw.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
}

// fake is an httptest Salesforce: a token endpoint handing out testToken
// with instance_url pointing back at itself, plus per-test route handlers.
type fake struct {
	t      *testing.T
	srv    *httptest.Server
	mux    *http.ServeMux
	mu     sync.Mutex
	reqs   []recorded
	tokens int
	// tokenHandler replaces the default token endpoint when set.
	tokenHandler http.HandlerFunc
}

// newBenchServer starts an httptest server for a benchmark.
func newBenchServer(b *testing.B, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t, mux: http.NewServeMux()}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
	f.mu.Unlock()
	if r.URL.Path == tokenPath {
		f.mu.Lock()
		f.tokens++
		h := f.tokenHandler
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		writeJSON(w, 200, `{"access_token":"`+testToken+`","instance_url":"`+f.srv.URL+`","id":"https://login.salesforce.com/id/00D/005","token_type":"Bearer","issued_at":"1712345678901","signature":"c2ln"}`)
		return
	}
	f.mux.ServeHTTP(w, r)
}

// handle registers h for a Go 1.22 mux pattern.
func (f *fake) handle(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

// requests returns the recorded non-token requests.
// usageRequests returns the recorded GET usage requests.
func (f *fake) usageRequests() []recorded {
	var out []recorded
	for _, r := range f.requests() {
		if strings.HasSuffix(r.Path, "/apps/oauth/usage") {
			out = append(out, r)
		}
	}
	return out
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.reqs {
		if r.Path != tokenPath {
			out = append(out, r)
		}
	}
	return out
}

func (f *fake) all() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) tokenCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// golden serves a testdata file.
func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden %s: %v", name, err)
	}
	return string(b)
}

func serveGolden(t *testing.T, status int, name string) http.HandlerFunc {
	body := golden(t, name)
	return func(w http.ResponseWriter, _ *http.Request) {
		ct := "application/json"
		if strings.HasSuffix(name, ".xml") {
			ct = "text/xml; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// resetConn drops the connection with an RST, the "socket hang up" case.
func resetConn(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// sleeps records the waits the client asked for, without sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testClient builds a JWT client against f with zero-wait retries (4
// attempts), a recording sleeper and an observed logger.
func testClient(t *testing.T, f *fake, mod ...func(*Options)) (*Client, *sleeps, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	s := &sleeps{}
	opts := Options{
		LoginURL: f.srv.URL,
		Auth:     Auth{Method: AuthJWT, ClientID: "3MVGCLIENT", Username: "rotator@example.com", Key: testKey()},
		Logger:   zap.New(core),
		Backoff:  rotator.Backoff{Base: 0, Max: 0, Attempts: 3}.NextAttempt,
		Sleep:    s.sleep,
		Org:      "devhub",
		Now:      func() time.Time { return time.Unix(1_800_000_000, 0) },
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, s, logs
}

// assertNoLeak fails if any known secret appears in s.
func assertNoLeak(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{testToken, testSecret, testStagedSecret, testClientSecret, "BEGIN RSA PRIVATE KEY"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks a secret (%.12s…): %s", where, secret, s)
		}
	}
}

func assertLogsClean(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + anyString(v)
		}
		assertNoLeak(t, "log line", line)
	}
}

func anyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	default:
		return fmt.Sprint(x)
	}
}
