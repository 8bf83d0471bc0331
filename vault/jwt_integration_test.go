//go:build integration

package vault

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// ciJWTMount mounts the JWT auth method at "jwt" with a public key this
// test holds and a role bound like a CI's OIDC role (issuer, audience,
// repository claim), and returns the signing key.
func ciJWTMount(t *testing.T, root *vaultapi.Client) *rsa.PrivateKey {
	t.Helper()
	writePolicy(t, root, "ecarotator", loadPolicy(t, "ecarotator"))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err := root.Sys().EnableAuthWithOptions("jwt", &vaultapi.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt/config", map[string]any{
		"jwt_validation_pubkeys": []string{pub}, "bound_issuer": "https://token.actions.githubusercontent.com",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt/role/ecarotator-ci", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"https://vault.example"},
		"bound_claims":   map[string]any{"repository": "acme/secrets-rotation", "ref": "refs/heads/main"},
		"token_policies": []string{"ecarotator"}, "token_ttl": "15m",
	}); err != nil {
		t.Fatal(err)
	}
	return key
}

func ciToken(t *testing.T, key *rsa.PrivateKey, ref string) string {
	now := time.Now()
	return signJWT(t, key, map[string]any{
		"iss": "https://token.actions.githubusercontent.com", "aud": "https://vault.example",
		"sub": "repo:acme/secrets-rotation:ref:" + ref, "repository": "acme/secrets-rotation", "ref": ref,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
}

// TestJWTLoginWithACIToken logs in with a CI-style OIDC token from an
// environment variable and from a file, uses the token (a KV write under
// the ecarotator policy), and is refused for a token whose claims the role
// does not bind; the JWT never appears in a log line or an error.
func TestJWTLoginWithACIToken(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
	key := ciJWTMount(t, root)
	good := ciToken(t, key, "refs/heads/main")

	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	t.Setenv("ECAROTATOR_TEST_ID_TOKEN", good)
	c, err := New(t.Context(), Options{Address: srv.Addr, Logger: log,
		Auth: AuthOptions{Method: AuthJWT, Role: "ecarotator-ci", JWTEnv: "ECAROTATOR_TEST_ID_TOKEN"}})
	if err != nil {
		t.Fatalf("jwt login from an env variable: %v", err)
	}
	defer c.Close()
	if _, err := c.WriteCredentials(t.Context(), "salesforce/jwt-ci", creds("3MVG9JWT.ci.key", "jwt-ci-secret"), rotator.WriteOptions{RotationID: "rot-jwt"}); err != nil {
		t.Fatalf("write with the jwt login's token: %v", err)
	}

	file := filepath.Join(t.TempDir(), "id-token")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, err := New(t.Context(), Options{Address: srv.Addr, Logger: log,
		Auth: AuthOptions{Method: AuthJWT, Role: "ecarotator-ci", JWTPath: file}})
	if err != nil {
		t.Fatalf("jwt login from a file: %v", err)
	}
	cf.Close()

	bad := ciToken(t, key, "refs/heads/feature")
	t.Setenv("ECAROTATOR_TEST_ID_TOKEN", bad)
	_, err = New(t.Context(), Options{Address: srv.Addr, Logger: log,
		Auth: AuthOptions{Method: AuthJWT, Role: "ecarotator-ci", JWTEnv: "ECAROTATOR_TEST_ID_TOKEN"}})
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("login with a feature-branch token: %v, want ErrBadCredentials", err)
	}
	t.Setenv("ECAROTATOR_TEST_ID_TOKEN", "")
	_, err = New(t.Context(), Options{Address: srv.Addr, Logger: log,
		Auth: AuthOptions{Method: AuthJWT, Role: "ecarotator-ci", JWTEnv: "ECAROTATOR_TEST_ID_TOKEN"}})
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("login with an empty variable: %v, want ErrBadCredentials", err)
	}
	for _, tok := range []string{good, bad} {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		for _, e := range logs.All() {
			line := e.Message + " " + fmtFields(e.Context)
			if strings.Contains(line, sig) {
				t.Fatalf("a JWT leaked into a log line: %q", e.Message)
			}
		}
		if strings.Contains(err.Error(), sig) {
			t.Fatalf("a JWT leaked into an error")
		}
	}
}

func fmtFields(fs []zapcore.Field) string {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	var b strings.Builder
	for k, v := range enc.Fields {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
		b.WriteString(" ")
	}
	return b.String()
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}
