//go:build integration

package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// TestDaemonShutdownIsBounded stops a daemon while a slow rotation (one
// second per Salesforce call) is in flight: Run must return within the
// scheduler's shutdown grace plus the engine's cleanup, leaving either a
// finished rotation or a journal; a second daemon then resumes that journal
// at start and the app ends with a pair Salesforce accepts, with the
// secret-access setting back to its prior value (I5).
func TestDaemonShutdownIsBounded(t *testing.T) {
	const grace = 10 * time.Second // daemonConfig's scheduler.shutdown_grace
	e := newEnv(t, envOptions{})
	cfgA := e.writeDaemonConfig("slow", daemonConfig{Schedule: "@every 2s", Window: "1s"})
	cfg, err := config.Load(cfgA, e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetFaults([]sfsim.Fault{{Kind: sfsim.FaultLatency, Latency: sfsim.Duration(time.Second)}})
	d, err := daemon.New(daemon.Options{Settings: wire.Daemon(cfg), Logger: e.logger()})
	if err != nil {
		t.Fatal(err)
	}
	rt := d.Runtime()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()

	var victim string
	eventually(t, time.Minute, "a rotation in flight", func() bool {
		for app := range initial {
			if _, _, err := rt.Vault.Load(t.Context(), app); err == nil {
				victim = app
				return true
			}
		}
		return false
	})
	stopAt := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(grace + 20*time.Second):
		t.Fatalf("Run did not return within %s of the stop", grace+20*time.Second)
	}
	took := time.Since(stopAt)
	t.Logf("stopped %s after cancel while rotating %s", took.Round(time.Millisecond), victim)
	if took > grace+10*time.Second {
		t.Errorf("shutdown took %s, want at most the %s grace plus one call's cleanup", took, grace)
	}

	// A second daemon (no latency, nothing scheduled) resumes what is left.
	e.sim.SetFaults(nil)
	cfgB := e.writeDaemonConfig("resume", daemonConfig{Schedule: "@yearly"})
	e.startDaemon(cfgB, daemon.Options{Listen: "-"})
	rtB := e.runtimeFor(cfgB)
	eventually(t, time.Minute, "no journal left", func() bool {
		_, _, err := rtB.Vault.Load(t.Context(), victim)
		return errors.Is(err, rotator.ErrNotFound)
	})
	st, _ := e.stored(rtB, victim)
	if got := e.consumer(victim).Key; got != st.Current.Key {
		t.Errorf("%s: salesforce primary %s, vault current %s", victim, got, st.Current.Key)
	}
	e.mustAuth(victim+" after resume", st.Current, e.sim.TokenURL("devhub"))
	if e.sim.SecretAccess("devhub") {
		t.Errorf("secret access is on after the resumed rotation; want off (its prior value)")
	}
}
