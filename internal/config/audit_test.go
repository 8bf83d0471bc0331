package config

import (
	"errors"
	"strings"
	"testing"
)

const auditBase = `
vault:
  address: https://vault.example.com:8200
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: x, username: u@x, vault_path: ecarotator/devhubs/prod}
apps:
  - {name: billing, devhub: prod, eca: B}
`

func TestAuditKeysDefaultToTransitWithASigningKey(t *testing.T) {
	cfg, err := LoadBytes([]byte(auditBase), "/etc/ecarotator/ecarotator.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Audit.MAC
	if m.TransitKey != DefaultAuditTransitKey || m.SignKey != DefaultAuditSignKey || m.TransitMount != "transit" || m.KVPath != "" {
		t.Fatalf("audit.mac defaults = %+v, want transit keys %s and %s", m, DefaultAuditTransitKey, DefaultAuditSignKey)
	}
	lab, err := LoadBytes([]byte(auditBase+"audit: {mac: {kv_path: ecarotator/keys/audit-mac}}\n"), "/etc/ecarotator/ecarotator.yaml", env(nil))
	if err != nil {
		t.Fatalf("lab mode outside the audit paths: %v", err)
	}
	if lab.Audit.MAC.TransitKey != "" || lab.Audit.MAC.SignKey != "" {
		t.Fatalf("lab mode got transit keys too: %+v", lab.Audit.MAC)
	}
}

func TestAuditKeyConfigProblems(t *testing.T) {
	tests := []struct {
		name, audit, path string
	}{
		{"a lab key where auditors read", "audit: {mac: {kv_path: ecarotator/audit/mac-key}}", "audit.mac.kv_path"},
		{"a lab key under the anchors", "audit: {checkpoint_path: ecarotator/cp, mac: {kv_path: ecarotator/cp/key}}", "audit.mac.kv_path"},
		{"a lab key and a transit key", "audit: {mac: {kv_path: ecarotator/keys/k, transit_key: t}}", "audit.mac"},
		{"one key to MAC and to sign", "audit: {mac: {transit_key: k, sign_key: k}}", "audit.mac.sign_key"},
		{"a signing key name that is a path", "audit: {mac: {sign_key: a/b}}", "audit.mac.sign_key"},
		{"an anchor id that is a path", "audit: {anchor_id: ../x}", "audit.anchor_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(auditBase+tt.audit+"\n"), "/etc/ecarotator/ecarotator.yaml", env(nil))
			var pe *ProblemsError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want problems", err)
			}
			for _, p := range pe.Problems {
				if p.Path == tt.path {
					return
				}
			}
			var got []string
			for _, p := range pe.Problems {
				got = append(got, p.Path+": "+p.Msg)
			}
			t.Fatalf("no problem at %s; got:\n%s", tt.path, strings.Join(got, "\n"))
		})
	}
}
