//go:build integration

package integration

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonSignals drives `ecarotator run` with signals: SIGHUP with an
// invalid config keeps the running one and says why, SIGHUP with a valid
// one reloads it, SIGTERM stops the daemon cleanly (exit 0).
func TestDaemonSignals(t *testing.T) {
	e := newEnv(t, envOptions{})
	cfg := e.writeDaemonConfig("signals", daemonConfig{})
	p := e.startProc("signals", cfg)
	logged := func(what, msg string) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() bool {
			if p.exited() {
				t.Fatalf("daemon exited: %v\n%s", p.err, tail(p.out.String(), 20))
			}
			return strings.Contains(p.out.String(), `"msg":"`+msg+`"`)
		})
	}
	logged("start", "daemon started")

	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(good, []byte("\nunknown_section: true\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logged("the bad config rejected", "SIGHUP: config not reloaded")
	if !strings.Contains(p.out.String(), "unknown_section") {
		t.Errorf("the rejection does not say why:\n%s", tail(p.out.String(), 5))
	}

	if err := os.WriteFile(cfg, []byte(strings.Replace(string(good), "  - name: support", "  - name: support\n    disabled: true", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logged("the good config reloaded", "config reloaded")

	p.stop(t)
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", p.err)
	}
	if !strings.Contains(p.out.String(), `"msg":"daemon stopped"`) {
		t.Errorf("no clean stop logged:\n%s", tail(p.out.String(), 5))
	}
}
