//go:build integration

package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// appRole enables AppRole (once per server) and creates role name with the
// daemon policy and the given token TTLs. It returns the role id and a fresh
// secret id.
func appRole(t testing.TB, root *vaultapi.Client, name, ttl, maxTTL string) (roleID, secretID string) {
	t.Helper()
	auths, err := root.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := root.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
			t.Fatal(err)
		}
		writePolicy(t, root, "ecarotator", loadPolicy(t, "ecarotator"))
	}
	if _, err := root.Logical().Write("auth/approle/role/"+name, map[string]any{
		"token_policies": "ecarotator", "token_ttl": ttl, "token_max_ttl": maxTTL,
	}); err != nil {
		t.Fatal(err)
	}
	s, err := root.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = s.Data["role_id"].(string)
	s, err = root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return roleID, s.Data["secret_id"].(string)
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func appRoleClient(t testing.TB, srv *vaulttest.Server, roleID string, mod func(*AuthOptions)) (*Client, error) {
	t.Helper()
	a := AuthOptions{Method: AuthAppRole, RoleID: roleID}
	mod(&a)
	c, err := New(t.Context(), Options{Address: srv.Addr, Auth: a, Logger: zaptest.NewLogger(t), Timeout: 10 * time.Second})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// tokenGone reports nil once root can no longer look tok up (expired).
func tokenGone(root *vaultapi.Client, tok string) func() error {
	return func() error {
		if _, err := root.Auth().Token().Lookup(tok); err == nil {
			return errors.New("token still valid")
		}
		return nil
	}
}

func TestAppRoleTokenExpiryIsHandledByRunWithoutLosingWork(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, secretID := appRole(t, root, "short", "2s", "4s")
	c, err := appRoleClient(t, srv, "", func(a *AuthOptions) {
		a.RoleID = ""
		a.RoleIDFile = writeFile(t, "role-id", roleID)
		a.SecretIDFile = writeFile(t, "secret-id", secretID)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	first := c.api.Token()
	v, err := c.WriteCredentials(ctx, "salesforce/approle", creds("k1", "s1"), rotator.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The first token reaches its 4s max TTL; the watcher must have logged
	// in again before that.
	eventually(t, 30*time.Second, "first token expired", tokenGone(root, first))
	eventually(t, 30*time.Second, "Run logged in again", func() error {
		if n := c.logins.Load(); n < 2 || c.api.Token() == first {
			return fmt.Errorf("%d logins, token replaced: %v", n, c.api.Token() != first)
		}
		return nil
	})
	if _, err := c.WriteCredentials(ctx, "salesforce/approle", creds("k2", "s2"), rotator.WriteOptions{CAS: v}); err != nil {
		t.Fatalf("write after expiry: %v", err)
	}
	got, _, err := c.ReadCredentials(ctx, "salesforce/approle")
	if err != nil || got.Current.Key != "k2" {
		t.Fatalf("got %q err=%v, want k2", got.Current.Key, err)
	}
}

func TestAppRoleTokenExpiryWithoutRunLogsInOnTheNextCall(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, secretID := appRole(t, root, "lazy", "1s", "1s")
	c, err := appRoleClient(t, srv, roleID, func(a *AuthOptions) { a.SecretID = rotator.NewSecret(secretID) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	l, err := c.Acquire(ctx, "lazy", "me", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "token expired", tokenGone(root, c.api.Token()))
	if _, err := c.WriteCredentials(ctx, "salesforce/lazy", creds("k", "s"), rotator.WriteOptions{Lease: &l}); err != nil {
		t.Fatalf("write with an expired token: %v", err)
	}
	if n := c.logins.Load(); n != 2 {
		t.Fatalf("got %d logins, want 2", n)
	}
}

func TestWrappedSecretIDIsUnwrappedOnceAndReusedForReLogin(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, _ := appRole(t, root, "wrapped", "1h", "1h")
	wrapper, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	wrapper.SetToken(srv.Token)
	wrapper.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	s, err := wrapper.Logical().Write("auth/approle/role/wrapped/secret-id", nil)
	if err != nil || s.WrapInfo == nil {
		t.Fatalf("wrapped secret id: %v", err)
	}
	_, err = appRoleClient(t, srv, roleID, func(a *AuthOptions) {
		a.SecretIDEnv = "ECAROTATOR_TEST_WRAPPED_SECRET_ID"
		a.SecretIDWrapped = true
	})
	if err == nil {
		t.Fatal("login without the variable set must fail")
	}
	t.Setenv("ECAROTATOR_TEST_WRAPPED_SECRET_ID", s.WrapInfo.Token)
	c, err := appRoleClient(t, srv, roleID, func(a *AuthOptions) {
		a.SecretIDEnv = "ECAROTATOR_TEST_WRAPPED_SECRET_ID"
		a.SecretIDWrapped = true
	})
	if err != nil {
		t.Fatalf("login with a wrapped secret id: %v", err)
	}
	first := c.api.Token()
	if err := c.relogin(t.Context(), ""); err != nil {
		t.Fatalf("second login (wrapping token already used): %v", err)
	}
	if c.api.Token() == first {
		t.Fatal("no new token after re-login")
	}
	if _, _, err := c.Load(t.Context(), "nothing"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("using the new token: got %v, want ErrNotFound", err)
	}
}

func TestLoginFailuresAreClassified(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, _ := appRole(t, root, "classified", "1h", "1h")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name string
		o    Options
		want error
	}{
		{"a wrong secret id is bad credentials", Options{Address: srv.Addr, Auth: AuthOptions{Method: AuthAppRole, RoleID: roleID, SecretID: rotator.NewSecret("00000000-0000-0000-0000-000000000000")}}, ErrBadCredentials},
		{"an unknown role id is bad credentials", Options{Address: srv.Addr, Auth: AuthOptions{Method: AuthAppRole, RoleID: "nope", SecretID: rotator.NewSecret("nope")}}, ErrBadCredentials},
		{"a bogus token is bad credentials", Options{Address: srv.Addr, Auth: AuthOptions{Token: rotator.NewSecret("hvs.bogus")}}, ErrBadCredentials},
		{"a used-up wrapping token is bad credentials", Options{Address: srv.Addr, Auth: AuthOptions{Method: AuthAppRole, RoleID: roleID, SecretID: rotator.NewSecret("hvs.used"), SecretIDWrapped: true}}, ErrBadCredentials},
		{"a Kubernetes login against a server without that auth method is bad credentials", Options{Address: srv.Addr, Auth: AuthOptions{Method: AuthKubernetes, Role: "r", JWTPath: writeFile(t, "jwt", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")}}, ErrBadCredentials},
		{"a server that is not listening is unreachable", Options{Address: closed, Auth: AuthOptions{Token: rotator.NewSecret("x")}}, rotator.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Timeout = 5 * time.Second
			_, err := New(t.Context(), tt.o)
			wantIs(t, err, tt.want)
		})
	}
}

func TestAnExpiredStaticTokenEndsRunWithBadCredentials(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	writePolicy(t, root, "ecarotator", loadPolicy(t, "ecarotator"))
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"ecarotator"}, TTL: "2s", ExplicitMaxTTL: "2s"})
	if err != nil {
		t.Fatal(err)
	}
	c := asToken(t, srv, s.Auth.ClientToken)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	wantIs(t, err, ErrBadCredentials)
	eventually(t, 30*time.Second, "token expired", tokenGone(root, s.Auth.ClientToken))
	_, _, err = c.ReadCredentials(ctx, "salesforce/x")
	wantIs(t, err, ErrBadCredentials)
}

// TestWrappedSecretIDFromAnotherPathIsRefused reproduces review L12: a
// wrapping token substituted by someone who can call sys/wrapping/wrap
// (holding a secret-id of their choosing) used to be unwrapped and used.
// Now its creation path is checked first, and the token is not used up.
func TestWrappedSecretIDFromAnotherPathIsRefused(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	roleID, _ := appRole(t, root, "subst", "1h", "1h")
	attacker, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	attacker.SetToken(srv.Token)
	attacker.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	s, err := attacker.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": "attacker-chosen"})
	if err != nil || s.WrapInfo == nil {
		t.Fatalf("wrap: %v", err)
	}
	t.Setenv("ECAROTATOR_TEST_SUBST_SECRET_ID", s.WrapInfo.Token)
	_, err = appRoleClient(t, srv, roleID, func(a *AuthOptions) {
		a.SecretIDEnv = "ECAROTATOR_TEST_SUBST_SECRET_ID"
		a.SecretIDWrapped = true
	})
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "sys/wrapping/wrap") {
		t.Fatalf("login with a substituted wrapping token: %v; want ErrBadCredentials naming its creation path", err)
	}
	if _, err := root.Logical().Write("sys/wrapping/lookup", map[string]any{"token": s.WrapInfo.Token}); err != nil {
		t.Errorf("the refused wrapping token was used up: %v", err)
	}
}

func TestSecretIDCreationPaths(t *testing.T) {
	for p, want := range map[string]bool{
		"auth/approle/role/ecarotator/secret-id":   true,
		"auth/approle/role/a/b/secret-id":          false,
		"auth/approle/role//secret-id":             false,
		"auth/other/role/ecarotator/secret-id":     false,
		"sys/wrapping/wrap":                        false,
		"auth/approle/role/ecarotator/secret-id/x": false,
		"": false,
	} {
		if got := isSecretIDPath(p, "approle"); got != want {
			t.Errorf("isSecretIDPath(%q) = %v, want %v", p, got, want)
		}
	}
}
