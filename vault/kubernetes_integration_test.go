//go:build integration

package vault

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.uber.org/zap/zaptest"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// signJWT makes an RS256 JWT like a projected service-account token.
func signJWT(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestKubernetesLoginReadsTheServiceAccountTokenAtEveryLogin drives the
// Kubernetes auth code path (vault/api/auth/kubernetes, the JWT file, the
// mount and role) against a real Vault. The test binary has no Kubernetes
// auth plugin and no cluster, so the JWT auth method is mounted at
// "kubernetes": it takes the same login request ({role, jwt} to
// auth/kubernetes/login) and validates the token against a key this test
// holds, as Kubernetes auth would against the cluster's issuer.
func TestKubernetesLoginReadsTheServiceAccountTokenAtEveryLogin(t *testing.T) {
	srv := vaulttest.Start(t)
	root := srv.Client(t)
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
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vaultapi.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/kubernetes/config", map[string]any{
		"jwt_validation_pubkeys": []string{pub}, "bound_issuer": "https://kubernetes.default.svc",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/kubernetes/role/ecarotator", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vault"},
		"bound_subject": "system:serviceaccount:ecarotator:ecarotator", "token_policies": []string{"ecarotator"}, "token_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	sa := func(key *rsa.PrivateKey) string {
		now := time.Now()
		return signJWT(t, key, map[string]any{
			"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ecarotator:ecarotator",
			"aud": []string{"vault"}, "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		})
	}
	jwtPath := writeFile(t, "token", sa(key))

	c, err := New(t.Context(), Options{
		Address: srv.Addr,
		Auth:    AuthOptions{Method: AuthKubernetes, Role: "ecarotator", JWTPath: jwtPath},
		Logger:  zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatalf("kubernetes login: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.WriteCredentials(t.Context(), "salesforce/k8s", creds("k", "s"), rotator.WriteOptions{}); err != nil {
		t.Fatalf("write with the kubernetes-issued token: %v", err)
	}

	// The kubelet rotates the projected token: a login must read the file
	// again. A token signed by another key is refused...
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwtPath, []byte(sa(other)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantIs(t, c.relogin(t.Context(), ""), ErrBadCredentials)
	// ...and a fresh valid one is accepted.
	if err := os.WriteFile(jwtPath, []byte(sa(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.relogin(t.Context(), ""); err != nil {
		t.Fatalf("re-login with the rotated token: %v", err)
	}
	if _, _, err := c.ReadCredentials(t.Context(), "salesforce/k8s"); err != nil {
		t.Fatal(err)
	}
}
