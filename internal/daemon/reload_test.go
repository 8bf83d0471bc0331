package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/wire"
)

func TestReloadableAcceptsAppChangesOnly(t *testing.T) {
	base, err := os.ReadFile("../../configs/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	load := func(edit func(string) string) *config.Config {
		t.Helper()
		cfg, err := config.LoadBytes([]byte(edit(string(base))), "", func(string) string { return "" })
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return cfg
	}
	same := func(s string) string { return s }
	failClosed := func(s string) string { return s + "audit:\n  fail_closed: true\n" }
	tests := []struct {
		name    string
		running func(string) string
		next    func(string) string
		restart bool
	}{
		{"the same file reloads", same, same, false},
		{"a pointer field set in both reloads", failClosed, failClosed, false},
		{"a new app reloads", same, func(s string) string {
			return s + "  - name: support\n    devhub: prod\n    eca: Support\n"
		}, false},
		{"a changed dev hub needs a restart", same, func(s string) string {
			return strings.Replace(s, "rotator@acme.example", "other@acme.example", 1)
		}, true},
		{"a changed vault address needs a restart", same, func(s string) string {
			return strings.Replace(s, "vault.example.com", "vault2.example.com", 1)
		}, true},
		{"a changed audit setting needs a restart", same, failClosed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Daemon{set: wire.Daemon(load(tt.running))}
			err := d.reloadable(wire.Daemon(load(tt.next)))
			if got := errors.Is(err, ErrRestartNeeded); got != tt.restart || (err != nil) != tt.restart {
				t.Errorf("reloadable() = %v, want restart needed: %v", err, tt.restart)
			}
		})
	}
}
