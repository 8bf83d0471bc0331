//go:build integration

package integration

import (
	"context"
	"testing"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	vaultapi "github.com/hashicorp/vault/api"
)

// TestAuditPoliciesOnRealVault writes configs/policies/auditor.hcl and
// ecarotator.hcl unchanged to a real Vault and tries every audit path
// they allow or deny with a token holding only that policy. Auditors
// verify (transit/verify, the public key, the anchors) and compute nothing
// (no transit/hmac, no transit/sign, no key); the daemon MACs, signs and
// anchors, creates records once and never rewrites them, and reads no key.
func TestAuditPoliciesOnRealVault(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client(t)
	enableAuditTransit(t, root)
	ctx := t.Context()
	kv := root.KVv2("secret")
	// What exists already: a record, a head, an anchor, and a lab-mode key
	// where docs/audit.md suggests it.
	for p, data := range map[string]map[string]any{
		"ecarotator/audit/records/1":                 {"line": "x"},
		"ecarotator/audit/head":                      {"seq": 1, "hash": "x"},
		"ecarotator/audit/checkpoint/anchors/demo":   {"seq": 1},
		"ecarotator/keys/audit-mac":                  {"key": "x"},
		"ecarotator/audit/checkpoint/anchors/other":  {"seq": 1},
		"ecarotator/audit/records/2":                 {"line": "y"},
		"ecarotator/audit/checkpoint/anchors/delete": {"seq": 1},
	} {
		if _, err := kv.Put(ctx, p, data); err != nil {
			t.Fatal(err)
		}
	}
	sign, err := root.Logical().Write("transit/sign/ecarotator-audit-sign", map[string]any{"input": "aGVsbG8="})
	if err != nil {
		t.Fatal(err)
	}
	hm, err := root.Logical().Write("transit/hmac/ecarotator-audit/sha2-256", map[string]any{"input": "aGVsbG8="})
	if err != nil {
		t.Fatal(err)
	}
	auditor := clientAs(t, root, policyToken(t, root, "auditor"))
	daemonC := clientAs(t, root, policyToken(t, root, "ecarotator"))

	write := func(c *vaultapi.Client, p string, data map[string]any) func(context.Context) error {
		return func(ctx context.Context) error { _, err := c.Logical().WriteWithContext(ctx, p, data); return err }
	}
	read := func(c *vaultapi.Client, p string) func(context.Context) error {
		return func(ctx context.Context) error {
			s, err := c.Logical().ReadWithContext(ctx, p)
			if err == nil && s == nil {
				return errNotFound
			}
			return err
		}
	}
	put := func(c *vaultapi.Client, p string, opts ...vaultapi.KVOption) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.KVv2("secret").Put(ctx, p, map[string]any{"k": "v"}, opts...)
			return err
		}
	}
	// readOrMissing: allowed when Vault answers (a control path holds
	// nothing: not found is still a permitted read).
	readOrMissing := func(c *vaultapi.Client, p string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := c.Logical().ReadWithContext(ctx, p); return err }
	}
	in := map[string]any{"input": "aGVsbG8="}
	tests := []struct {
		name  string
		allow bool
		op    func(context.Context) error
	}{
		// auditor.hcl
		{"auditor cannot HMAC on the bare transit path (the review's H1)", false, write(auditor, "transit/hmac/ecarotator-audit", in)},
		{"auditor cannot HMAC on the writer's path", false, write(auditor, "transit/hmac/ecarotator-audit/sha2-256", in)},
		{"auditor cannot sign a chain head", false, write(auditor, "transit/sign/ecarotator-audit-sign", in)},
		{"auditor cannot export the signing key", false, read(auditor, "transit/export/signing-key/ecarotator-audit-sign")},
		{"auditor cannot read the HMAC key's settings", false, read(auditor, "transit/keys/ecarotator-audit")},
		{"auditor cannot read a lab-mode KV key", false, read(auditor, "secret/data/ecarotator/keys/audit-mac")},
		{"auditor verifies a record MAC on the writer's path", true, write(auditor, "transit/verify/ecarotator-audit/sha2-256", map[string]any{"input": "aGVsbG8=", "hmac": hm.Data["hmac"]})},
		{"auditor reads the signing public key", true, read(auditor, "transit/keys/ecarotator-audit-sign")},
		{"auditor verifies a signature through transit", false, write(auditor, "transit/verify/ecarotator-audit-sign", map[string]any{"input": "aGVsbG8=", "signature": sign.Data["signature"]})},
		{"auditor reads an anchor", true, read(auditor, "secret/data/ecarotator/audit/checkpoint/anchors/demo")},
		{"auditor reads a Vault-sink record", true, read(auditor, "secret/data/ecarotator/audit/records/1")},
		{"auditor cannot move an anchor", false, put(auditor, "ecarotator/audit/checkpoint/anchors/demo")},
		{"auditor cannot append a Vault-sink record", false, put(auditor, "ecarotator/audit/records/3", vaultapi.WithCheckAndSet(0))},
		// The read API and the auditor console (issue 15) check read on
		// the status control path.
		{"auditor reads an app's status control path (read API, console)", true, readOrMissing(auditor, "secret/data/ecarotator/control/billing/status")},
		{"auditor cannot rotate an app", false, put(auditor, "ecarotator/control/billing/rotate")},
		{"auditor cannot revoke a previous pair", false, put(auditor, "ecarotator/control/billing/revoke")},
		{"auditor cannot reveal a secret", false, put(auditor, "ecarotator/control/billing/reveal")},
		{"auditor cannot read an app's credentials", false, readOrMissing(auditor, "secret/data/salesforce/billing")},
		// ecarotator.hcl (the daemon)
		{"daemon HMACs records", true, write(daemonC, "transit/hmac/ecarotator-audit/sha2-256", in)},
		{"daemon signs the chain head", true, write(daemonC, "transit/sign/ecarotator-audit-sign", in)},
		{"daemon cannot read the signing key", false, read(daemonC, "transit/keys/ecarotator-audit-sign")},
		{"daemon cannot export the signing key", false, read(daemonC, "transit/export/signing-key/ecarotator-audit-sign")},
		{"daemon cannot sign with another transit key", false, write(daemonC, "transit/sign/other", in)},
		{"daemon cannot read a lab-mode KV key outside its paths", false, read(daemonC, "secret/data/ecarotator/keys/audit-mac")},
		{"daemon creates a new Vault-sink record", true, put(daemonC, "ecarotator/audit/records/3", vaultapi.WithCheckAndSet(0))},
		{"daemon cannot rewrite a Vault-sink record (L6)", false, put(daemonC, "ecarotator/audit/records/2")},
		{"daemon advances the head", true, put(daemonC, "ecarotator/audit/head")},
		{"daemon advances an anchor", true, put(daemonC, "ecarotator/audit/checkpoint/anchors/other")},
		{"daemon creates an anchor", true, put(daemonC, "ecarotator/audit/checkpoint/anchors/new", vaultapi.WithCheckAndSet(0))},
		{"daemon cannot delete an anchor", false, func(ctx context.Context) error {
			return daemonC.KVv2("secret").DeleteMetadata(ctx, "ecarotator/audit/checkpoint/anchors/delete")
		}},
		{"daemon cannot write elsewhere under the audit path", false, put(daemonC, "ecarotator/audit/mac-key")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(t.Context())
			switch {
			case tt.allow && err != nil:
				t.Errorf("denied: %v", err)
			case !tt.allow && err == nil:
				t.Error("allowed")
			case !tt.allow && !isForbidden(err):
				t.Errorf("failed for another reason than a permission denial: %v", err)
			}
		})
	}
}

var errNotFound = errorString("not found")

type errorString string

func (e errorString) Error() string { return string(e) }
