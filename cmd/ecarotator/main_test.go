package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(t.Context(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestConfigValidateAcceptsEveryExample(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs")
	}
	for _, f := range files {
		code, out, errOut := runCLI(t, nil, "config", "validate", "-c", f)
		if code != ExitOK || !strings.Contains(out, ": ok") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", f, code, out, errOut)
		}
	}
}

func TestConfigValidatePrintsAllProblemsAndExitsWithConfigCode(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	body := `
vault: {address: "http://vault.example.com"}
devhubs:
  - name: Prod!
    auth: {client_id: x, vault_path: a/b, username: u}
apps:
  - {name: a, devhub: missing, eca: E, schedule: "not a cron"}
`
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "config", "validate", "-c", bad)
	if code != ExitConfig {
		t.Fatalf("exit %d, want %d (stderr %q)", code, ExitConfig, errOut)
	}
	for _, want := range []string{"vault.address:", "devhubs[0].name:", "apps[0].devhub:", "apps[0].schedule:", "apps[0].verify.token_urls:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"version flag succeeds", []string{"--version"}, ExitOK},
		{"version command succeeds", []string{"version"}, ExitOK},
		{"help succeeds", []string{"--help"}, ExitOK},
		{"an unknown flag is a usage error", []string{"--no-such-flag"}, ExitUsage},
		{"an unknown command is a usage error", []string{"frobnicate"}, ExitUsage},
		{"a missing config file is a config error", []string{"config", "validate", "-c", "/nonexistent.yaml"}, ExitConfig},
		{"mfa enroll without a config is a config error", []string{"mfa", "enroll", "alice", "-c", "/nonexistent.yaml"}, ExitConfig},
		{"reveal without a code is a usage error", []string{"reveal", "billing"}, ExitUsage},
		{"approve without a code is a usage error", []string{"approve", "0123abcd"}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, errOut)
			}
		})
	}
}

func TestConfigValidateNeverPrintsTheVaultToken(t *testing.T) {
	const tok = "hvs.CLI-LEAK-CANARY"
	code, out, errOut := runCLI(t, map[string]string{"VAULT_TOKEN": tok}, "config", "validate", "-c", "../../configs/full.yaml", "--log-level", "debug")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, tok) {
		t.Fatal("token leaked to CLI output")
	}
}
