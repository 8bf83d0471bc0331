//go:build integration

package vault

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestAgentTemplateRendersCurrentAndPreviousPair runs a real `vault agent`
// with configs/agent/agent.hcl (paths and address pointed at the test) and
// checks the file it renders from configs/agent/salesforce-credentials.ctmpl.
func TestAgentTemplateRendersCurrentAndPreviousPair(t *testing.T) {
	srv := vaulttest.Start(t)
	if srv.Bin == "" {
		t.Skip("needs the vault binary to run vault agent")
	}
	root := srv.Client(t)
	writePolicy(t, root, "app-reader-billing", strings.ReplaceAll(loadPolicy(t, "app-reader"), "APP_NAME", "billing"))
	if err := root.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/billing-agent", map[string]any{"token_policies": "app-reader-billing", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	s, err := root.Logical().Read("auth/approle/role/billing-agent/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID := s.Data["role_id"].(string)
	s, err = root.Logical().Write("auth/approle/role/billing-agent/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretID := s.Data["secret_id"].(string)

	c := rootClient(t, srv)
	ctx := t.Context()
	now := time.Now().UTC()
	first := creds("current-key-1", "current-secret-1")
	first.Previous = rotator.Credentials{Key: "old-key-0", Secret: rotator.NewSecret("old-secret-0")}
	first.PreviousValidUntil = now.Add(time.Hour)
	v, err := c.WriteCredentials(ctx, "salesforce/billing", first, rotator.WriteOptions{RotationID: "r1"})
	if err != nil {
		t.Fatal(err)
	}

	etc, run, out := t.TempDir(), t.TempDir(), t.TempDir()
	for name, content := range map[string]string{"role-id": roleID, "secret-id": secretID} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := os.ReadFile(filepath.Join("..", "configs", "agent", "salesforce-credentials.ctmpl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "salesforce-credentials.ctmpl"), tmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("..", "configs", "agent", "agent.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.NewReplacer(
		"https://vault.example.com:8200", srv.Addr,
		"/etc/vault-agent/", etc+"/",
		"/run/vault-agent/", run+"/",
		"/run/billing/", out+"/",
		`static_secret_render_interval = "1m"`, `static_secret_render_interval = "1s"`,
	).Replace(string(cfg))
	for _, must := range []string{srv.Addr, etc, run, out, `"1s"`} {
		if !strings.Contains(rewritten, must) {
			t.Fatalf("configs/agent/agent.hcl changed shape: %q not substituted", must)
		}
	}
	cfgPath := filepath.Join(etc, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(rewritten), 0o600); err != nil {
		t.Fatal(err)
	}

	agent := exec.Command(srv.Bin, "agent", "-config="+cfgPath)
	// The config file must say everything: no VAULT_* from this process
	// (an empty VAULT_ADDR would override the file's address).
	agent.Env = []string{"SKIP_SETCAP=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			agent.Env = append(agent.Env, kv)
		}
	}
	logs := &lockedWriter{w: &strings.Builder{}}
	agent.Stdout, agent.Stderr = logs, logs
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = agent.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-agent.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	agentLogs := func() string { logs.mu.Lock(); defer logs.mu.Unlock(); return logs.w.String() }

	rendered := filepath.Join(out, "salesforce.env")
	waitFile := func(what string, cond func(env map[string]string) error) map[string]string {
		t.Helper()
		var env map[string]string
		deadline := time.Now().Add(60 * time.Second)
		for {
			select {
			case <-exited:
				t.Fatalf("vault agent exited:\n%s", agentLogs())
			default:
			}
			b, err := os.ReadFile(rendered)
			if err == nil {
				env = parseEnv(string(b))
				if err = cond(env); err == nil {
					return env
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v\nagent logs:\n%s", what, err, agentLogs())
			}
			time.Sleep(50 * time.Millisecond) // polling the file with a deadline
		}
	}

	env := waitFile("first render with the previous pair", func(env map[string]string) error {
		if env["SALESFORCE_CONSUMER_KEY"] != "current-key-1" {
			return fmt.Errorf("current key %q", env["SALESFORCE_CONSUMER_KEY"])
		}
		return nil
	})
	want := map[string]string{
		"SALESFORCE_CONSUMER_KEY":             "current-key-1",
		"SALESFORCE_CONSUMER_SECRET":          "current-secret-1",
		"SALESFORCE_TOKEN_URL":                first.TokenURL,
		"SALESFORCE_ROTATED_AT":               "2026-11-26T01:00:00Z",
		"SALESFORCE_VAULT_VERSION":            "1",
		"SALESFORCE_PREVIOUS_CONSUMER_KEY":    "old-key-0",
		"SALESFORCE_PREVIOUS_CONSUMER_SECRET": "old-secret-0",
		"SALESFORCE_PREVIOUS_VALID_UNTIL":     first.PreviousValidUntil.Format(time.RFC3339),
	}
	if err := sameEnv(env, want); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "token")); err != nil {
		t.Fatalf("token sink: %v", err)
	}
	if st, err := os.Stat(rendered); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("rendered file mode %v err=%v, want 0600", st.Mode().Perm(), err)
	}

	// The overlap is over: previous_valid_until in the past hides the
	// previous pair at the next render.
	second := creds("current-key-2", "current-secret-2")
	second.Previous = rotator.Credentials{Key: "current-key-1", Secret: rotator.NewSecret("current-secret-1")}
	second.PreviousValidUntil = now.Add(-time.Minute)
	if _, err := c.WriteCredentials(ctx, "salesforce/billing", second, rotator.WriteOptions{CAS: v, RotationID: "r2"}); err != nil {
		t.Fatal(err)
	}
	env = waitFile("re-render after rotation", func(env map[string]string) error {
		if env["SALESFORCE_CONSUMER_KEY"] != "current-key-2" {
			return errors.New("not re-rendered yet")
		}
		return nil
	})
	want = map[string]string{
		"SALESFORCE_CONSUMER_KEY":    "current-key-2",
		"SALESFORCE_CONSUMER_SECRET": "current-secret-2",
		"SALESFORCE_TOKEN_URL":       second.TokenURL,
		"SALESFORCE_ROTATED_AT":      "2026-11-26T01:00:00Z",
		"SALESFORCE_VAULT_VERSION":   "2",
	}
	if err := sameEnv(env, want); err != nil {
		t.Fatal(err)
	}
}

func parseEnv(s string) map[string]string {
	env := map[string]string{}
	for _, ln := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(ln), "="); ok {
			env[k] = v
		}
	}
	return env
}

func sameEnv(got, want map[string]string) error {
	for k, w := range want {
		if got[k] != w {
			return fmt.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("unexpected %s in rendered file", k)
		}
	}
	return nil
}

// lockedWriter collects a process's output from its copying goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
