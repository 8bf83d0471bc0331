//go:build integration

package integration

import (
	"testing"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestRotationAgainstTestcontainersVault takes the test helper's
// testcontainers-go path on purpose: Vault runs in a Docker container (the
// image `make images` builds from the cached binary, or the official one
// online; Ryuk disabled), and one full rotation stores its pair there. It
// skips without a Docker engine, and fails instead with
// ECAROTATOR_REQUIRE_DOCKER=1 (CI).
func TestRotationAgainstTestcontainersVault(t *testing.T) {
	e := newEnv(t, envOptions{startVault: vaulttest.StartContainer})
	if e.vault.Source != "testcontainers" || e.vault.ContainerID == "" || e.vault.Version == "" {
		t.Fatalf("vault source %q container %q version %q: not a testcontainers Vault", e.vault.Source, e.vault.ContainerID, e.vault.Version)
	}
	t.Logf("testcontainers Vault %s in container %.12s (image %s) at %s", e.vault.Version, e.vault.ContainerID, e.vault.Image, e.vault.Addr)

	rt := e.runtime(wire.RuntimeOptions{})
	app, _ := rt.App("billing")
	res, err := rt.Engine.Rotate(t.Context(), app, rotator.Request{Actor: operator})
	if err != nil {
		t.Fatalf("rotate billing: %+v %v", res, err)
	}
	sc, meta := e.stored(rt, "billing")
	if sc.Current.Key == initial["billing"].Key {
		t.Fatalf("Vault in the container still holds the initial key %s", sc.Current.Key)
	}
	if sc.Previous.Key != initial["billing"].Key {
		t.Errorf("previous key %q, want the initial key %s", sc.Previous.Key, initial["billing"].Key)
	}
	e.mustAuth("rotated billing", sc.Current, app.VerifyURLs...)
	t.Logf("rotated billing in the container's Vault: rotation %s, KV version %d, consumer key %s", res.RotationID, meta.Version, sc.Current.Key)
}
