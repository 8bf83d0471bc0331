//go:build integration

package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/rotator"
)

// TestAuditM4CLIWritersWhileTheDaemonWritesKeepOneChain: the review ran
// `mfa enroll` three times while the daemon was running; the daemon's next
// record re-used a sequence number and verify failed forever after. Now
// every writer appends under the file's lock after catching up with the
// others: CLI processes that audit (`audit checkpoint`: sign and anchor the
// head) run while the daemon records events, and the trail verifies.
func TestAuditM4CLIWritersWhileTheDaemonWritesKeepOneChain(t *testing.T) {
	e := newEnv(t, envOptions{})
	// The daemon writes the same file as e's CLI config (audit.log).
	cfgPath := e.writeDaemonConfig("m4", daemonConfig{AuditFile: "audit.log"})
	d, _ := e.startDaemon(cfgPath, daemon.Options{})
	auditor := policyToken(t, e.vault.Client(t), "auditor")

	const daemonEvents, cliWriters = 60, 4
	var wg, cli sync.WaitGroup
	errs := make(chan error, daemonEvents+cliWriters)
	cliDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The daemon writes throughout: at least daemonEvents records, and
		// on until every CLI writer has finished.
		for i := 0; ; i++ {
			if i >= daemonEvents {
				select {
				case <-cliDone:
					return
				default:
				}
			}
			typ := rotator.EventStepCompleted
			if i%10 == 9 {
				typ = rotator.EventManualAction // ends an action: anchors
			}
			ev := rotator.Event{Type: typ, App: "billing", RotationID: fmt.Sprintf("m4-%d", i/10), Actor: rotator.Actor{Kind: rotator.ActorScheduler}, Outcome: rotator.OutcomeOK}
			if err := d.Runtime().Audit.Record(t.Context(), ev); err != nil {
				errs <- fmt.Errorf("daemon record %d: %w", i, err)
				return
			}
		}
	}()
	for w := range cliWriters {
		cli.Add(1)
		go func() {
			defer cli.Done()
			code, _, out, errOut := e.cli(nil, "audit", "checkpoint")
			if code != 0 || !strings.Contains(out, "signed and anchored") {
				errs <- fmt.Errorf("cli writer %d: exit %d\n%s%s", w, code, out, errOut)
			}
		}()
	}
	cli.Wait()
	close(cliDone)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	out := e.verifyAs(auditor, 0, []string{": OK", "anchor: file-"})
	// daemon.started and friends, the 60 events, the daemon's checkpoint
	// records and one per CLI writer at least.
	var records int
	if _, err := fmt.Sscanf(out[strings.Index(out, "records: "):], "records: %d", &records); err != nil || records < daemonEvents+cliWriters {
		t.Fatalf("verify counted %d records (%v), want at least %d:\n%s", records, err, daemonEvents+cliWriters, out)
	}
	// The daemon keeps writing after the CLI writers: still one chain.
	if err := d.Runtime().Audit.Record(t.Context(), rotator.Event{Type: rotator.EventManualAction, Actor: rotator.Actor{Kind: rotator.ActorSystem}}); err != nil {
		t.Fatalf("daemon record after the CLI writers: %v", err)
	}
	e.verifyAs(auditor, 0, []string{": OK"})
}
