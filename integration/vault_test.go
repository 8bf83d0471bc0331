//go:build integration

package integration

import (
	"errors"
	"net/http"
	"testing"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	vaultapi "github.com/hashicorp/vault/api"
)

// TestRealVaultKVv2CheckAndSet proves the test harness gives a real Vault
// server: a KV v2 check-and-set write succeeds once, a stale CAS is refused
// by the server, and the read returns the winning version.
func TestRealVaultKVv2CheckAndSet(t *testing.T) {
	srv := vaulttest.Start(t)
	if srv.Version == "" {
		t.Fatal("server reported no version")
	}
	t.Logf("ran against Vault %s (%s)", srv.Version, srv.Source)
	kv := srv.Client(t).KVv2("secret")
	ctx := t.Context()

	v1, err := kv.Put(ctx, "integration/cas", map[string]any{"n": "1"}, vaultapi.WithCheckAndSet(0))
	if err != nil {
		t.Fatalf("first CAS write: %v", err)
	}
	if v1.VersionMetadata.Version != 1 {
		t.Fatalf("first version = %d, want 1", v1.VersionMetadata.Version)
	}
	if _, err := kv.Put(ctx, "integration/cas", map[string]any{"n": "again"}, vaultapi.WithCheckAndSet(0)); err == nil {
		t.Fatal("CAS=0 on an existing path: want a server-side refusal")
	} else {
		var re *vaultapi.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
			t.Fatalf("stale CAS: want HTTP 400 from Vault, got %v", err)
		}
	}
	if _, err := kv.Put(ctx, "integration/cas", map[string]any{"n": "2"}, vaultapi.WithCheckAndSet(1)); err != nil {
		t.Fatalf("CAS=1 write: %v", err)
	}
	got, err := kv.Get(ctx, "integration/cas")
	if err != nil {
		t.Fatal(err)
	}
	if got.VersionMetadata.Version != 2 || got.Data["n"] != "2" {
		t.Fatalf("read back version %d data %v, want version 2 n=2", got.VersionMetadata.Version, got.Data)
	}
}
