package wire

import (
	"os"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
)

// TestDaemonSettingsCarryTheConfig: the daemon reads no config, so what it
// needs must arrive in its settings: enabled apps only (in order), every
// app counted, the scheduler, server, webhook and MFA values converted.
func TestDaemonSettingsCarryTheConfig(t *testing.T) {
	base, err := os.ReadFile("../../configs/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	extra := `  - name: support
    devhub: prod
    eca: Support
    disabled: true
  - name: analytics
    devhub: prod
    eca: Analytics
    notify: [ops]
scheduler:
  retry_initial: 7s
  retry_max: 3m
notifications:
  webhooks:
    - name: ops
      url: https://hooks.example.com/ecarotator
      timeout: 4s
      secret_vault_path: ecarotator/webhooks/ops
mfa:
  enabled: true
  lockout: 20m
server:
  listen: 127.0.0.1:9999
`
	cfg, err := config.LoadBytes(append(base, extra...), "/etc/ecarotator/ecarotator.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s := Daemon(cfg)
	if len(s.Apps) != 2 || s.Apps[0].App.Name != "billing" || s.Apps[1].App.Name != "analytics" || s.Configured != 3 {
		t.Fatalf("apps %+v (configured %d), want billing and analytics of 3", s.Apps, s.Configured)
	}
	if a := s.Apps[1]; a.Sched.Name != "analytics" || a.Sched.DevHub != "prod" || len(a.Notify) != 1 || a.Notify[0] != "ops" {
		t.Errorf("analytics: sched %+v notify %v", a.Sched, a.Notify)
	}
	if s.RetryInitial != 7*time.Second || s.RetryMax != 3*time.Minute || s.Listen != "127.0.0.1:9999" || s.Path != cfg.Path {
		t.Errorf("retry %s..%s listen %q path %q", s.RetryInitial, s.RetryMax, s.Listen, s.Path)
	}
	if len(s.Webhooks) != 1 || s.Webhooks[0].Timeout != 4*time.Second || !s.MFA.Enabled || s.MFA.Lockout != 20*time.Minute {
		t.Errorf("webhooks %+v mfa %+v", s.Webhooks, s.MFA)
	}
	if len(s.DevHubs) != 1 || s.DevHubs[0].Name != "prod" || s.LockTTL != cfg.Vault.LockTTL.D() {
		t.Errorf("devhubs %+v lock ttl %s", s.DevHubs, s.LockTTL)
	}
	if got := s.RestartReasons(Daemon(cfg)); len(got) != 0 {
		t.Errorf("the same config needs a restart: %v", got)
	}
}
