package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/rotator"
)

func TestClassify(t *testing.T) {
	resp := func(code int, msgs ...string) error {
		return fmt.Errorf("wrapped: %w", &vaultapi.ResponseError{StatusCode: code, Errors: msgs, URL: "http://v/v1/secret/data/x"})
	}
	tests := []struct {
		name string
		err  error
		want []error
		not  []error
	}{
		{"a sealed server is sealed and unreachable", resp(503, "Vault is sealed"), []error{ErrSealed, rotator.ErrUnreachable}, nil},
		{"a 503 without the word sealed is only unreachable", resp(503, "standby"), []error{rotator.ErrUnreachable}, []error{ErrSealed}},
		{"a check-and-set mismatch is a conflict", resp(400, "check-and-set parameter did not match the current version"), []error{rotator.ErrConflict}, nil},
		{"another 400 is nothing we branch on", resp(400, "invalid request"), nil, []error{rotator.ErrConflict, rotator.ErrUnreachable}},
		{"a 403 is a permission error", resp(403, "permission denied"), []error{rotator.ErrPermission}, nil},
		{"a 404 is not found", resp(404), []error{rotator.ErrNotFound}, nil},
		{"a 500 is unreachable", resp(500, "internal error"), []error{rotator.ErrUnreachable}, nil},
		{"a 429 from a standby is unreachable", resp(429), []error{rotator.ErrUnreachable}, nil},
		{"a refused connection is unreachable", &url.Error{Op: "Put", URL: "http://v", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, []error{rotator.ErrUnreachable}, nil},
		{"a broken connection is unreachable", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), []error{rotator.ErrUnreachable}, nil},
		{"a timeout is unreachable", context.DeadlineExceeded, []error{rotator.ErrUnreachable}, nil},
		{"a cancelled context stays a cancellation", context.Canceled, []error{context.Canceled}, []error{rotator.ErrUnreachable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wrapErr("write", "secret/data/x", tt.err)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want it to match %v", err, w)
				}
			}
			for _, n := range tt.not {
				if errors.Is(err, n) {
					t.Errorf("got %v, want it not to match %v", err, n)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got a multi-line message %q", err.Error())
			}
		})
	}
}

func TestWrappingAClassifiedErrorKeepsItsKinds(t *testing.T) {
	inner := newOpError("check lock", "p", rotator.ErrFenced)
	err := wrapErr("write credentials", "q", inner)
	if !errors.Is(err, rotator.ErrFenced) {
		t.Fatalf("got %v, want ErrFenced", err)
	}
	if !strings.HasPrefix(err.Error(), "vault: write credentials q: ") {
		t.Fatalf("got %q, want the outer operation first", err.Error())
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		wants []string
	}{
		{"the zero value is a valid token setup", Options{}, nil},
		{"approle needs a role id and exactly one secret id source",
			Options{Auth: AuthOptions{Method: AuthAppRole, SecretIDFile: "a", SecretIDEnv: "B"}},
			[]string{"auth.role_id", "auth.secret_id"}},
		{"approle with role id file and wrapped secret id file is valid",
			Options{Auth: AuthOptions{Method: AuthAppRole, RoleIDFile: "r", SecretIDFile: "s", SecretIDWrapped: true}}, nil},
		{"kubernetes needs a role", Options{Auth: AuthOptions{Method: AuthKubernetes}}, []string{"auth.role"}},
		{"jwt needs a role and a jwt source", Options{Auth: AuthOptions{Method: AuthJWT}}, []string{"auth.role", "auth.jwt"}},
		{"jwt takes one source, not both", Options{Auth: AuthOptions{Method: AuthJWT, Role: "r", JWTPath: "f", JWTEnv: "E"}}, []string{"auth.jwt"}},
		{"jwt with a role and an env variable is valid", Options{Auth: AuthOptions{Method: AuthJWT, Role: "r", JWTEnv: "VAULT_ID_TOKEN"}}, nil},
		{"an unknown method is reported", Options{Auth: AuthOptions{Method: "ldap"}}, []string{"auth.method"}},
		{"every problem is reported at once",
			Options{Auth: AuthOptions{Method: "x"}, MaxVersions: -1, Timeout: -time.Second, TLS: TLSOptions{ClientCert: "c"}},
			[]string{"auth.method", "max_versions", "timeout", "tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.withDefaults().validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got valid, want errors about %v", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %v, want a problem about %s", err, w)
				}
			}
		})
	}
}

func TestPathsAreAcceptedInEveryCommonSpelling(t *testing.T) {
	c := &Client{mount: "secret"}
	for _, in := range []string{"salesforce/billing", "/salesforce/billing/", "secret/salesforce/billing", "secret/data/salesforce/billing", "secret/metadata/salesforce/billing"} {
		if got := c.rel(in); got != "salesforce/billing" {
			t.Errorf("rel(%q) = %q, want salesforce/billing", in, got)
		}
	}
}

func TestCredentialsEncodeAndDecode(t *testing.T) {
	in := rotator.StoredCredentials{
		Current:            rotator.Credentials{Key: "k2", Secret: rotator.NewSecret("s2")},
		Previous:           rotator.Credentials{Key: "k1", Secret: rotator.NewSecret("s1")},
		PreviousValidUntil: time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		RotatedAt:          time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		TokenURL:           "https://x/services/oauth2/token",
		RotationID:         "r",
	}
	d := encodeCredentials(in)
	if d[FieldPreviousValidUntil] != "2026-11-30T23:00:00Z" {
		t.Fatalf("got previous_valid_until %v, want UTC RFC 3339", d[FieldPreviousValidUntil])
	}
	out, err := decodeCredentials(d)
	if err != nil {
		t.Fatal(err)
	}
	if out.Current.Secret.Reveal() != "s2" || out.Previous.Secret.Reveal() != "s1" || !out.PreviousValidUntil.Equal(in.PreviousValidUntil) || out.RotationID != "r" {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	empty := encodeCredentials(rotator.StoredCredentials{Current: in.Current})
	if empty[FieldPreviousValidUntil] != "" || empty[FieldPreviousConsumerKey] != "" {
		t.Fatalf("zero previous pair must encode as empty strings, got %v", empty)
	}
	if _, err := decodeCredentials(map[string]any{FieldPreviousValidUntil: "tomorrow"}); err == nil {
		t.Fatal("a malformed time must be an error")
	}
}

func TestJournalStateDropsRedactedValues(t *testing.T) {
	e := rotator.JournalEntry{App: "a", Pending: rotator.Credentials{Key: "k", Secret: rotator.NewSecret("s")}, Extra: map[string]string{"x": "y"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"s"`) {
		t.Fatalf("the secret leaked into the state: %s", b)
	}
	got, err := decodeJournal(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.App != "a" || got.Pending.Key != "k" || !got.Pending.Secret.IsZero() || got.Extra["x"] != "y" {
		t.Fatalf("got %+v", got)
	}
	if _, err := decodeJournal(""); err == nil {
		t.Fatal("an empty state must be an error")
	}
}

// A journal written before the secret-access setting had one name keeps
// its prior value under the old field; it still restores the setting.
func TestJournalWithTheLegacyPriorFieldStillRestores(t *testing.T) {
	got, err := decodeJournal(`{"rotation_id":"r1","app":"a","step":"expose","done":true,"prior_exposure":false}`)
	if err != nil {
		t.Fatal(err)
	}
	if got.PriorSecretAccess == nil || *got.PriorSecretAccess {
		t.Fatalf("prior value lost: %+v", got.PriorSecretAccess)
	}
	got, err = decodeJournal(`{"app":"a","prior_exposure":true,"prior_secret_access":false}`)
	if err != nil || got.PriorSecretAccess == nil || *got.PriorSecretAccess {
		t.Fatalf("the current field must win: %+v %v", got.PriorSecretAccess, err)
	}
}

// TestLoginBackoffKeepsItsRanges pins the login pacing: each wait lies in
// [500ms·2^(n-1), 20% more], the un-jittered part capped at 30s, forever.
func TestLoginBackoffKeepsItsRanges(t *testing.T) {
	tests := []struct {
		name     string
		attempt  int
		min, max time.Duration
	}{
		{"the first retry waits half a second", 1, 500 * time.Millisecond, 600 * time.Millisecond},
		{"the second doubles", 2, time.Second, 1200 * time.Millisecond},
		{"the sixth is 16s", 6, 16 * time.Second, 19200 * time.Millisecond},
		{"the seventh reaches the 30s cap", 7, 30 * time.Second, 36 * time.Second},
		{"a huge attempt stays at the cap", 1000, 30 * time.Second, 36 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []float64{0, 1} {
				retry, wait := LoginBackoff(func() float64 { return r }).NextAttempt(tt.attempt)
				want := tt.min
				if r == 1 {
					want = tt.max
				}
				if !retry || wait != want {
					t.Errorf("attempt %d, rand %v: got (%v, %s), want (true, %s)", tt.attempt, r, retry, wait, want)
				}
			}
		})
	}
}

func TestIdentityOfATokenLookup(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
		want string
	}{
		{"a display name and entity", map[string]any{"display_name": "approle-alice", "entity_id": "e1"}, "approle-alice (entity e1)"},
		{"only a display name", map[string]any{"display_name": "token-bob"}, "token-bob"},
		{"only an entity", map[string]any{"entity_id": "e2"}, "entity e2"},
		{"only an accessor", map[string]any{"accessor": "acc"}, "accessor acc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := identityOf(&vaultapi.Secret{Data: tt.data}); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// fakeVault is an httptest Vault that understands AppRole login, token
// lookup-self and one KV v2 read, enough to exercise the 403 handling.
type fakeVault struct {
	mu      sync.Mutex
	valid   map[string]bool // tokens that work
	allowed bool            // whether valid tokens may read the KV path
	logins  atomic.Int64
	reads   atomic.Int64
}

func (f *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("X-Vault-Token")
	f.mu.Lock()
	ok := f.valid[tok]
	f.mu.Unlock()
	deny := func() {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errors":["permission denied"]}`)
	}
	switch r.URL.Path {
	case "/v1/auth/approle/login":
		n := f.logins.Add(1)
		tok := fmt.Sprintf("tok-%d", n)
		f.mu.Lock()
		f.valid[tok] = true
		f.mu.Unlock()
		_, _ = fmt.Fprintf(w, `{"auth":{"client_token":%q,"renewable":true,"lease_duration":3600}}`, tok)
	case "/v1/auth/token/lookup-self":
		if !ok {
			deny()
			return
		}
		_, _ = io.WriteString(w, `{"data":{"display_name":"approle","ttl":3600,"renewable":true}}`)
	case "/v1/secret/data/ecarotator/state/app":
		f.reads.Add(1)
		if !ok || !f.allowed {
			deny()
			return
		}
		_, _ = io.WriteString(w, `{"data":{"data":{"state":"{\"app\":\"app\"}","pending_consumer_secret":"p"},"metadata":{"version":4}}}`)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeVault) expireAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid = map[string]bool{}
}

func newFake(t *testing.T, allowed bool) (*fakeVault, *Client) {
	t.Helper()
	f := &fakeVault{valid: map[string]bool{}, allowed: allowed}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(t.Context(), Options{
		Address: srv.URL,
		Auth:    AuthOptions{Method: AuthAppRole, RoleID: "r", SecretID: rotator.NewSecret("s")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestAnExpiredTokenIsReplacedAndTheCallRetriedOnce(t *testing.T) {
	f, c := newFake(t, true)
	f.expireAll()
	e, v, err := c.Load(t.Context(), "app")
	if err != nil {
		t.Fatalf("load after expiry: %v", err)
	}
	if v != 4 || e.App != "app" || e.Pending.Secret.Reveal() != "p" {
		t.Fatalf("got %+v v=%d", e, v)
	}
	if f.logins.Load() != 2 || f.reads.Load() != 2 {
		t.Fatalf("got %d logins and %d reads, want 2 and 2", f.logins.Load(), f.reads.Load())
	}
}

func TestAPolicyDenialIsPermissionAndNotRetried(t *testing.T) {
	f, c := newFake(t, false)
	_, _, err := c.Load(t.Context(), "app")
	if !errors.Is(err, rotator.ErrPermission) {
		t.Fatalf("got %v, want ErrPermission", err)
	}
	if f.logins.Load() != 1 || f.reads.Load() != 1 {
		t.Fatalf("got %d logins and %d reads, want 1 and 1", f.logins.Load(), f.reads.Load())
	}
}

func TestConcurrentCallsWithAnExpiredTokenLogInOnce(t *testing.T) {
	f, c := newFake(t, true)
	f.expireAll()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Load(t.Context(), "app"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("got %d logins, want 2 (one at start, one shared re-login)", n)
	}
}

func TestErrorsNeverCarryTheSecretID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"errors":["invalid role or secret ID"]}`)
	}))
	defer srv.Close()
	_, err := New(t.Context(), Options{Address: srv.URL, Auth: AuthOptions{Method: AuthAppRole, RoleID: "r", SecretID: rotator.NewSecret("very-secret-id")}})
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("got %v, want ErrBadCredentials", err)
	}
	if strings.Contains(err.Error(), "very-secret-id") || strings.Contains(fmt.Sprintf("%+v", err), "very-secret-id") {
		t.Fatalf("secret id in error: %v", err)
	}
}
