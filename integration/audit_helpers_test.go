//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// enableAuditTransit does what an administrator does once before the
// first start (scripts/demo.sh does the same): mount transit and create
// the audit HMAC key and the ed25519 key that signs the chain head.
func enableAuditTransit(t testing.TB, root *vaultapi.Client) {
	t.Helper()
	if err := root.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	if _, err := root.Logical().Write("transit/keys/ecarotator-audit", nil); err != nil {
		t.Fatalf("create transit/keys/ecarotator-audit: %v", err)
	}
	if _, err := root.Logical().Write("transit/keys/ecarotator-audit-sign", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatalf("create transit/keys/ecarotator-audit-sign: %v", err)
	}
}

// policyToken writes configs/policies/<name>.hcl (unchanged) as policy
// "it-<name>" and returns a token holding only it.
func policyToken(t testing.TB, root *vaultapi.Client, names ...string) string {
	t.Helper()
	var pols []string
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("..", "configs", "policies", name+".hcl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Sys().PutPolicy("it-"+name, string(b)); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		pols = append(pols, "it-"+name)
	}
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: pols, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// clientAs clones root with another token.
func clientAs(t testing.TB, root *vaultapi.Client, token string) *vaultapi.Client {
	t.Helper()
	c, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}
