// Package kubernetes holds no code: its test loads the daemon config that
// the ConfigMap in this folder carries with ecarotator's own strict loader,
// so the manifests cannot ship a config the daemon would refuse. The
// Kubernetes types themselves are checked by tools/kubeval (its own module).
package kubernetes

import (
	"os"
	"testing"

	"github.com/ecarotator/ecarotator/internal/config"
	yaml "go.yaml.in/yaml/v3"
)

func TestTheConfigMapHoldsAConfigTheDaemonAccepts(t *testing.T) {
	b, err := os.ReadFile("configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	raw, ok := cm.Data["config.yaml"]
	if cm.Kind != "ConfigMap" || !ok {
		t.Fatalf("configmap.yaml: kind %q, keys %v: want a ConfigMap with config.yaml", cm.Kind, cm.Data)
	}
	// As in the pod: no VAULT_* variables, the file mounted at this path.
	cfg, err := config.LoadBytes([]byte(raw), "/etc/ecarotator/config/config.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("the daemon would refuse the ConfigMap's config: %v", err)
	}
	if got := cfg.Vault.Auth.Method; got != "kubernetes" {
		t.Errorf("vault.auth.method %q, want kubernetes (the ServiceAccount is the identity)", got)
	}
	if !cfg.Audit.VaultSink.Enabled {
		t.Error("audit.vault_sink is off: two replicas need the chain in Vault")
	}
	if cfg.Server.TLSCert == "" {
		t.Error("server TLS is off: the Service promises HTTPS")
	}
}
