package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// gatedMAC counts Sign calls and holds the first one until released, so a
// test can queue events behind it without timing.
type gatedMAC struct {
	MACer
	calls, signed atomic.Int64
	gate          chan struct{}
	fail          atomic.Bool
}

func (g *gatedMAC) Sign(ctx context.Context, msgs []string) ([]string, error) {
	if g.calls.Add(1) == 1 && g.gate != nil {
		<-g.gate
	}
	if g.fail.Load() {
		return nil, errors.New("transit unreachable")
	}
	g.signed.Add(int64(len(msgs)))
	return g.MACer.Sign(ctx, msgs)
}

func queued(l *Log) int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// waitFor polls cond until it holds or a deadline passes: a wait on a
// condition, never on the clock alone.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func event(i int) rotator.Event {
	return rotator.Event{Type: rotator.EventStepCompleted, App: fmt.Sprintf("app%d", i), RotationID: fmt.Sprintf("r%d", i),
		Step: rotator.StepVerify, Actor: rotator.Actor{Kind: rotator.ActorScheduler}, Outcome: rotator.OutcomeOK,
		Time: time.Date(2026, 11, 30, 9, 0, i, 0, time.UTC)}
}

// Concurrent Record calls that arrive while a batch is being written share
// the next batch: one MAC request and one write for all of them, and the
// chain still verifies record by record.
func TestConcurrentRecordsShareOneMACRequest(t *testing.T) {
	const n = 40
	path := filepath.Join(t.TempDir(), "audit.log")
	mac := &gatedMAC{MACer: testMAC(t), gate: make(chan struct{})}
	l := openLog(t, Options{File: path, MAC: mac})
	mac.calls.Store(0) // New may have signed; count from here
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = l.Record(t.Context(), event(0)) }()
	waitFor(t, "the first record to hold the MAC", func() bool { return mac.calls.Load() == 1 })
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.Record(t.Context(), event(i)) }()
	}
	waitFor(t, "every other record to queue", func() bool { return queued(l) == n-1 })
	close(mac.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if c := mac.calls.Load(); c != 2 {
		t.Errorf("%d MAC requests for %d events, want 2 (the first alone, then one batch)", c, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.Records != n || res.LastSeq != n {
		t.Fatalf("verified %d records (last seq %d), want %d", res.Records, res.LastSeq, n)
	}
}

// A batch whose MAC fails is not durable for any of its events, leaves
// nothing on disk, and the next event is written normally.
func TestAFailedBatchFailsEveryEventAndTheLogGoesOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	mac := &gatedMAC{MACer: testMAC(t)}
	l := openLog(t, Options{File: path, MAC: mac})
	if err := l.Record(t.Context(), event(0)); err != nil {
		t.Fatal(err)
	}
	mac.fail.Store(true)
	if err := l.Record(t.Context(), event(1)); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("record with the MAC failing: %v, want ErrNotDurable", err)
	}
	mac.fail.Store(false)
	if err := l.Record(t.Context(), event(2)); err != nil {
		t.Fatalf("record after the MAC came back: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFile(t.Context(), path, VerifyOptions{MAC: testMAC(t)})
	if err != nil || res.Records != 2 {
		t.Fatalf("verify: %d records, %v; want 2 (the failed event is not in the log)", res.Records, err)
	}
}
