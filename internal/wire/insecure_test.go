package wire

import (
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/internal/config"
)

// TestInsecureSettingsAreNamed: review L10 and M5. Vault TLS verification
// off and a plaintext listener outside loopback are listed for the start-up
// error log, the config.insecure audit event and /readyz.
func TestInsecureSettingsAreNamed(t *testing.T) {
	cfg := &config.Config{}
	if got := Daemon(cfg).Insecure("127.0.0.1:9464"); len(got) != 0 {
		t.Errorf("secure defaults reported %v", got)
	}
	cfg.Vault.TLS.InsecureSkipVerify = true
	got := Daemon(cfg).Insecure("0.0.0.0:9464")
	if len(got) != 2 || !strings.Contains(got[0], "insecure_skip_verify") || !strings.Contains(got[1], "allow_plaintext") {
		t.Errorf("insecureSettings = %v, want skip-verify and plaintext", got)
	}
	cfg.Server.TLSCert = "cert.pem"
	if got := Daemon(cfg).Insecure("0.0.0.0:9464"); len(got) != 1 {
		t.Errorf("with TLS: %v, want only skip-verify", got)
	}
	if got := Daemon(&config.Config{}).Insecure("-"); len(got) != 0 {
		t.Errorf("server disabled: %v", got)
	}
}
