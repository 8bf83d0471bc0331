package config

import (
	"strings"
	"testing"
	"time"
)

func TestAppStrategyKeys(t *testing.T) {
	base := `
vault: {address: "https://v:8200"}
devhubs:
  - name: prod
    my_domain_url: https://acme.my.salesforce.com
    auth: {client_id: k, username: u, vault_path: p/q}
apps:
`
	t.Run("defaults: auto, secret read auto, no overlap, 10m deploy timeout", func(t *testing.T) {
		cfg, err := LoadBytes([]byte(base+"  - {name: billing, devhub: prod, eca: Billing}\n"), "", env(nil))
		if err != nil {
			t.Fatal(err)
		}
		a := cfg.Apps[0]
		if a.Strategy != StrategyAuto || a.SecretRead != SecretReadAuto || a.MetadataOverlap != 0 || a.DeployTimeout.D() != 10*time.Minute || a.RotateKey {
			t.Fatalf("defaults = %+v", a)
		}
	})
	t.Run("every metadata key is read", func(t *testing.T) {
		cfg, err := LoadBytes([]byte(base+"  - {name: pkg, devhub: prod, eca: Pkg, strategy: metadata, rotate_key: true, secret_read: metadata, metadata_overlap: 1h, deploy_timeout: 2m}\n"), "", env(nil))
		if err != nil {
			t.Fatal(err)
		}
		a := cfg.Apps[0]
		if a.Strategy != StrategyMetadata || !a.RotateKey || a.SecretRead != SecretReadMetadata || a.MetadataOverlap.D() != time.Hour || a.DeployTimeout.D() != 2*time.Minute {
			t.Fatalf("app = %+v", a)
		}
	})
	t.Run("bad values are reported with their paths", func(t *testing.T) {
		_, err := LoadBytes([]byte(base+"  - {name: x, devhub: prod, eca: X, strategy: magic, secret_read: soap, metadata_overlap: -1h}\n  - {name: y, devhub: prod, eca: Y, strategy: staged, rotate_key: true}\n"), "", env(nil))
		for _, want := range []string{"apps[0].strategy:", "apps[0].secret_read:", "apps[0].metadata_overlap:", "apps[1].strategy:"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("want %s problem, got %v", want, err)
			}
		}
	})
}
