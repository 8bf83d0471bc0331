package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
)

// Run: go test -run '^$' -bench . -benchtime 1x ./audit/   (verify sizes)
//      go test -run '^$' -bench FileAppend ./audit/          (append rates)
// -short shrinks the verify sizes to 10k/100k.

func benchEvent(i int) rotator.Event {
	return rotator.Event{Type: rotator.EventStepCompleted, App: "billing", Org: "prod", ECA: "Billing_ECA",
		ConsumerKey: "3MVG9-public-consumer-key", RotationID: fmt.Sprintf("rot-%d", i/12), Step: rotator.StepVerify,
		Actor: rotator.Actor{Kind: rotator.ActorScheduler, Reason: "schedule"}, Outcome: rotator.OutcomeOK,
		VaultPath: "secret/salesforce/billing", VaultVersion: i/12 + 1, Fingerprint: "fp1:0123456789abcdefghijkl"}
}

func BenchmarkFileAppend(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync-baseline", true}} {
		b.Run(mode.name, func(b *testing.B) {
			l := openLog(b, Options{File: filepath.Join(b.TempDir(), "audit.log"), noSync: mode.noSync})
			ctx := context.Background()
			ev := benchEvent(1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.Record(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// generateLog writes n events (no fsync: setup only) and returns the path.
func generateLog(b *testing.B, dir string, n int) string {
	b.Helper()
	path := filepath.Join(dir, fmt.Sprintf("audit-%d.log", n))
	clk := newClock()
	l, err := New(context.Background(), Options{File: path, MAC: testMAC(b), Now: clk.Now, noSync: true, MaxFileBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := l.Record(ctx, benchEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// peakHeap samples HeapInuse every 20ms while fn runs and returns the peak.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return peak
}

func BenchmarkVerify(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() {
		sizes = []int{10_000, 100_000}
	}
	dir := b.TempDir()
	for _, n := range sizes {
		path := generateLog(b, dir, n)
		b.Run(fmt.Sprintf("scan-baseline/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := ScanLines(path)
				if err != nil || got != n {
					b.Fatalf("scan: %d lines, %v", got, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("verify/%d", n), func(b *testing.B) {
			var peak uint64
			for i := 0; i < b.N; i++ {
				peak = max(peak, peakHeap(func() {
					res, err := VerifyFile(context.Background(), path, VerifyOptions{MAC: testMAC(b)})
					if err != nil || res.Records != uint64(n) {
						b.Fatalf("verify: %v", err)
					}
				}))
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

func BenchmarkParseLine(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.log")
	l := openLog(b, Options{File: path, noSync: true})
	l.Record(context.Background(), benchEvent(1))
	l.Close()
	line := readLines(b, path)[0]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
