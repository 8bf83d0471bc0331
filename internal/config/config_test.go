package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestEveryExampleConfigLoadsAndValidates(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f, env(nil))
			if err != nil {
				t.Fatalf("Load(%s): %v", f, err)
			}
			if len(cfg.Apps) == 0 {
				t.Errorf("%s defines no apps", f)
			}
		})
	}
}

func TestInvalidConfigReportsEveryProblemWithItsFieldPath(t *testing.T) {
	bad := `
vault:
  address: http://vault.example.com:8200
devhubs:
  - name: prod
    api_version: "64.0"
    secret_access: sometimes
    auth:
      method: jwt
      client_id: abc
      vault_path: ecarotator/devhubs/prod
apps:
  - name: billing
    devhub: prod
    eca: Billing
    schedule: "61 * * * *"
    window: 1h
    verify:
      token_urls: [https://acme.my.salesforce.com/services/oauth2/token]
  - name: billing
    devhub: nowhere
    eca: Other
    vault_path: salesforce/billing
    overlap: {policy: after}
    verify:
      token_urls: [http://acme.my.salesforce.com/services/oauth2/token]
`
	_, err := LoadBytes([]byte(bad), "", env(nil))
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ProblemsError, got %v", err)
	}
	want := []string{
		"vault.address: must use https outside loopback",
		"devhubs[0].api_version: must be 65.0 or later",
		"devhubs[0].secret_access: must be toggle or always_on",
		"devhubs[0].auth.username: is required",
		"apps[0].schedule: invalid cron schedule",
		"apps[1].name: duplicate app name \"billing\"",
		"apps[1].vault_path: duplicate Vault path \"salesforce/billing\"",
		"apps[1].devhub: unknown Dev Hub \"nowhere\"",
		"apps[1].overlap.after: is required",
		"apps[1].verify.token_urls[0]: must use https outside loopback",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
	if len(pe.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(pe.Problems), len(want), got)
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	cfg := `
vault: {address: "https://v:8200", adress: "typo"}
devhubs: []
apps:
  - name: a
    devhub: x
    eca: y
    shedule: "@daily"
`
	_, err := LoadBytes([]byte(cfg), "", env(nil))
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ProblemsError, got %v", err)
	}
	// Unknown keys come with their field path and a suggestion, alongside
	// every other problem (the decoder no longer stops at the first).
	for _, w := range []string{
		"vault.adress: unknown key (did you mean address?)",
		"apps[0].shedule: unknown key (did you mean schedule?)",
		"devhubs: at least one Dev Hub is required",
		`apps[0].devhub: unknown Dev Hub "x"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

func TestUnknownKeysAreReportedWithEveryOtherProblem(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "the issue's example: an unknown app key beside a bad schedule and a type error",
			yaml: `
vault: {address: "https://v:8200"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    concurrency: many
    auth: {client_id: c, username: u, vault_path: p}
apps:
  - name: billing
    devhub: prod
    eca: Billing
    bogus_key: 1
    schedule: "not a cron"
    verify: {timout: 5s}
`,
			want: []string{
				"apps[0].bogus_key: unknown key",
				"apps[0].verify.timout: unknown key (did you mean timeout?)",
				"apps[0].schedule:",
				"cannot unmarshal !!str `many`",
			},
		},
		{
			name: "nested auth keys and a key far from any known one",
			yaml: `
vault:
  address: "https://v:8200"
  auth: {method: jwt, jwt: {role: r, token_env: X, tokn_file: f}}
  zzzzzzzz: 1
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: c, username: u, vault_path: p}
apps:
  - {name: billing, devhub: prod, eca: Billing}
`,
			want: []string{
				"vault.auth.jwt.tokn_file: unknown key (did you mean token_file?)",
				"vault.zzzzzzzz: unknown key\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tt.yaml), "", env(nil))
			if err == nil {
				t.Fatal("want problems, got none")
			}
			got := err.Error() + "\n"
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%v", w, err)
				}
			}
		})
	}
}

func TestEnvironmentOverridesTheFileAndDefaultsFillTheRest(t *testing.T) {
	cfg, err := Load("../../configs/minimal.yaml", env(map[string]string{
		"VAULT_ADDR":      "http://127.0.0.1:8200",
		"VAULT_NAMESPACE": "team-a",
		"VAULT_TOKEN":     "hvs.envtoken",
		"VAULT_CACERT":    "ca.pem",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.Address != "http://127.0.0.1:8200" || cfg.Vault.Namespace != "team-a" {
		t.Errorf("env not applied: %+v", cfg.Vault)
	}
	if cfg.Vault.Auth.Token.Reveal() != "hvs.envtoken" {
		t.Errorf("VAULT_TOKEN not taken")
	}
	if want := filepath.Join(cfg.Dir, "ca.pem"); cfg.Vault.TLS.CACert != want {
		t.Errorf("relative path: got %q, want %q", cfg.Vault.TLS.CACert, want)
	}
	app := cfg.Apps[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"vault path", app.VaultPath, "salesforce/billing"},
		{"schedule", app.Schedule, DefaultSchedule},
		{"overlap", app.Overlap.Policy, OverlapSalesforceExpiry},
		{"max age", app.MaxAge.D(), 30 * 24 * time.Hour},
		{"verify url from My Domain", app.Verify.TokenURLs[0], "https://acme.my.salesforce.com/services/oauth2/token"},
		{"token url", app.TokenURL, "https://acme.my.salesforce.com/services/oauth2/token"},
		{"jwt audience", cfg.DevHubs[0].Auth.Audience, "auto"},
		{"secret access", cfg.DevHubs[0].SecretAccess, "toggle"},
		{"fail closed", cfg.Audit.AuditFailClosed(), true},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRotatingOwnECAIsRefused(t *testing.T) {
	cfg := `
vault: {address: "https://v:8200"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: k, username: u, vault_path: p/q, own_eca: Rotator}
apps:
  - {name: self, devhub: prod, eca: rotator}
`
	_, err := LoadBytes([]byte(cfg), "", env(nil))
	if err == nil || !strings.Contains(err.Error(), "apps[0].eca:") {
		t.Fatalf("want apps[0].eca problem, got %v", err)
	}
}

func TestDurationsAcceptDaysAndWeeks(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1.5d", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.D() != tt.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// The Vault token held by the config never shows in its printed, JSON or
// error forms.
func TestConfigNeverLeaksTheVaultToken(t *testing.T) {
	const tok = "hvs.TOPSECRET-token-value"
	cfg, err := Load("../../configs/full.yaml", env(map[string]string{"VAULT_TOKEN": tok}))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	outs := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"json": string(js),
		"err":  fmt.Errorf("load: %v / %+v", cfg.Vault.Auth, cfg.Vault.Auth.Token).Error(),
	}
	for name, out := range outs {
		if strings.Contains(out, tok) {
			t.Errorf("%s output leaks the token", name)
		}
	}
}

func TestLoadRejectsMissingAndOversizedFiles(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil); err == nil {
		t.Error("missing file: want error")
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxConfigBytes+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: got %v", err)
	}
}

func FuzzLoadBytes(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		if b, err := os.ReadFile("../../configs/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("vault: [1,2"))
	f.Add([]byte("apps: {a: 1}\n---\nx: 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes(data, "", nil)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		var pe *ProblemsError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error is not a *ProblemsError: %T %v", err, err)
		}
	})
}

func TestJWTAuthNeedsARoleAndOneTokenSource(t *testing.T) {
	base := `
vault:
  address: "https://v:8200"
  auth: {method: jwt, jwt: %s}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: c, username: u, vault_path: p}
apps:
  - {name: billing, devhub: prod, eca: Billing}
`
	tests := []struct {
		name, jwt string
		want      []string
	}{
		{"a role and an env variable are enough", "{role: ci, token_env: VAULT_ID_TOKEN}", nil},
		{"a token file resolves against the config folder", "{role: ci, token_file: id-token}", nil},
		{"no role and no source", "{}", []string{"vault.auth.jwt.role", "vault.auth.jwt.token_env"}},
		{"both sources", "{role: ci, token_env: X, token_file: f}", []string{"vault.auth.jwt.token_env: set exactly one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadBytes([]byte(fmt.Sprintf(base, tt.jwt)), "/etc/ecarotator/ecarotator.yaml", env(nil))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Vault.Auth.JWT.Mount != "jwt" {
					t.Errorf("mount %q, want the default jwt", cfg.Vault.Auth.JWT.Mount)
				}
				if f := cfg.Vault.Auth.JWT.TokenFile; f != "" && f != "/etc/ecarotator/id-token" {
					t.Errorf("token_file %q, want /etc/ecarotator/id-token", f)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in %v", w, err)
				}
			}
		})
	}
}
