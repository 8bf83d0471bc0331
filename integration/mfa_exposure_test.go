//go:build integration

package integration

import (
	"sync"
	"testing"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestTwoAppsShareOneOpeningOnRealVault runs two replicas against a real
// Vault and the simulator: billing opens the Dev Hub's secret-access
// setting and pauses; support rotates completely meanwhile, sharing the
// opening (the ledger lives in Vault under the journal prefix), and leaves
// the setting open for billing; billing, the last one out, restores it.
func TestTwoAppsShareOneOpeningOnRealVault(t *testing.T) {
	e := newEnv(t, envOptions{})
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := e.runtime(wire.RuntimeOptions{Holder: "replica-a", Hook: func(p string) error {
		if p == "step:expose" {
			once.Do(func() { close(paused); <-resume })
		}
		return nil
	}})
	b := e.runtime(wire.RuntimeOptions{Holder: "replica-b", NoAudit: true}) // one writer per audit file
	billing, _ := a.App("billing")
	support, _ := b.App("support")

	done := make(chan error, 1)
	go func() {
		_, err := a.Engine.Rotate(t.Context(), billing, rotator.Request{Actor: operator})
		done <- err
	}()
	<-paused
	if !e.sim.SecretAccess("devhub") {
		t.Fatal("billing paused after expose, but the setting is off")
	}
	if _, err := b.Engine.Rotate(t.Context(), support, rotator.Request{Actor: operator}); err != nil {
		t.Fatalf("support while billing holds the opening: %v", err)
	}
	if !e.sim.SecretAccess("devhub") {
		t.Error("support restored the setting while billing still held it")
	}
	if h, err := b.Engine.SecretAccessHolders(t.Context(), "devhub"); err != nil || len(h) != 1 || h[0] != "billing" {
		t.Errorf("holders after support = %v, %v; want [billing]", h, err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("billing: %v", err)
	}
	if e.sim.SecretAccess("devhub") {
		t.Error("I5: the setting is still on after the last holder finished")
	}
	for _, app := range []string{"billing", "support"} {
		sc, _ := e.stored(a, app)
		if sc.Current.Key == initial[app].Key {
			t.Errorf("%s not rotated", app)
		}
	}
	if h, err := a.Engine.SecretAccessHolders(t.Context(), "devhub"); err != nil || len(h) != 0 {
		t.Errorf("holders at the end = %v, %v", h, err)
	}
}
