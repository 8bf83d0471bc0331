//go:build integration

package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/pquerna/otp"
	"go.uber.org/zap"

	"github.com/ecarotator/ecarotator/internal/mfa"
	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/vault"
)

type nopAudit struct{}

func (nopAudit) Record(context.Context, rotator.Event) error { return nil }
func (nopAudit) Fingerprint(rotator.Secret) string           { return "" }

// TestMFAPoliciesOnRealVault writes configs/policies/mfa.hcl and
// mfa-admin.hcl to a real Vault: an administrator enrolls and disables
// operators but can read no seed; the daemon (ecarotator.hcl + mfa.hcl)
// verifies codes and runs approvals but cannot enroll; a plain operator
// (operator.hcl) can do neither.
func TestMFAPoliciesOnRealVault(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	for _, name := range []string{"mfa", "mfa-admin", "operator", "ecarotator"} {
		b, err := os.ReadFile(filepath.Join("..", "configs", "policies", name+".hcl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := root.Sys().PutPolicy("it-"+name, string(b)); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
	}
	client := func(policies ...string) *vaultapi.Client {
		s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(s.Auth.ClientToken)
		return c
	}
	svc := func(c *vaultapi.Client) *mfa.Service {
		s, err := mfa.New(mfa.Options{Vault: vault.FromAPI(c, ""), Audit: nopAudit{}, Logger: zap.NewNop(), Skew: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	admin, daemonSvc, operator := svc(client("it-mfa-admin")), svc(client("it-ecarotator", "it-mfa")), svc(client("it-operator"))
	ctx := t.Context()

	uri, err := admin.Enroll(ctx, "token-alice (entity 0000000a-0000-4000-8000-00000000000a)")
	if err != nil {
		t.Fatalf("admin enroll: %v", err)
	}
	if _, err := admin.Enroll(ctx, "token-bob (entity 0000000b-0000-4000-8000-00000000000b)"); err != nil {
		t.Fatalf("admin enroll bob: %v", err)
	}
	if _, err := client("it-mfa-admin").KVv2("secret").Get(ctx, "ecarotator/mfa/seeds/0000000a-0000-4000-8000-00000000000a"); err == nil {
		t.Error("the administrator can read a seed")
	}
	if _, err := daemonSvc.Enroll(ctx, "token-mallory (entity 0000000c-0000-4000-8000-00000000000c)"); !errors.Is(err, rotator.ErrPermission) {
		t.Errorf("daemon enroll: err = %v, want a permission denial", err)
	}
	if _, err := operator.Enroll(ctx, "token-mallory (entity 0000000c-0000-4000-8000-00000000000c)"); !errors.Is(err, rotator.ErrPermission) {
		t.Errorf("operator enroll: err = %v, want a permission denial", err)
	}
	if err := operator.Verify(ctx, "token-alice (entity 0000000a-0000-4000-8000-00000000000a)", "123456", "rotate", "billing"); errors.Is(err, mfa.ErrInvalidCode) || err == nil {
		t.Errorf("operator token read alice's seed: err = %v", err)
	}

	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	alice := &mfaOperator{name: "token-alice (entity 0000000a-0000-4000-8000-00000000000a)", entity: "0000000a-0000-4000-8000-00000000000a", seed: key.Secret()}
	if err := daemonSvc.Verify(ctx, "token-alice (entity 0000000a-0000-4000-8000-00000000000a)", alice.code(t), "rotate", "billing"); err != nil {
		t.Fatalf("daemon verify: %v", err)
	}
	a, err := daemonSvc.RequestApproval(ctx, "revoke", "billing", "token-alice (entity 0000000a-0000-4000-8000-00000000000a)", alice.code(t), "")
	if err != nil {
		t.Fatalf("daemon request approval: %v", err)
	}
	if _, err := daemonSvc.Approve(ctx, a.ID, "token-bob (entity 0000000b-0000-4000-8000-00000000000b)", "000000"); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("daemon approve with a wrong code: %v", err)
	}
	if err := admin.Disable(ctx, "token-alice (entity 0000000a-0000-4000-8000-00000000000a)"); err != nil {
		t.Fatalf("admin disable: %v", err)
	}
	if err := daemonSvc.Disable(ctx, "token-bob (entity 0000000b-0000-4000-8000-00000000000b)"); !errors.Is(err, rotator.ErrPermission) {
		t.Errorf("daemon disable: err = %v, want a permission denial", err)
	}
}
