//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// timingTransport sums the duration of every HTTP round trip it carries.
type timingTransport struct {
	base  http.RoundTripper
	total atomic.Int64 // nanoseconds
	count atomic.Int64
}

func (t *timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.total.Add(int64(time.Since(start)))
	t.count.Add(1)
	return resp, err
}

// BenchmarkRotation measures one full rotation (real Vault, sfsim over
// loopback, overlap policy immediate so every iteration starts from an empty
// staged slot) against the sum of the HTTP round trips it made (Vault and
// Salesforce). The reported ratio wall/roundtrips shows what the engine adds
// on top of the network: with 100 ms of simulated Salesforce latency per
// call it should approach 1.
func BenchmarkRotation(b *testing.B) {
	for _, lat := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("sf_latency=%s", lat), func(b *testing.B) {
			e := newEnv(b, envOptions{overlap: "{policy: immediate}"})
			if lat > 0 {
				e.sim.SetFaults([]sfsim.Fault{{Kind: sfsim.FaultLatency, Latency: sfsim.Duration(lat)}})
			}
			tt := &timingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
			rt := e.runtime(wire.RuntimeOptions{HTTPClient: &http.Client{Transport: tt, Timeout: time.Minute}})
			app, _ := rt.App("billing")
			// The first rotation adopts the hand-made path; keep it out of the figures.
			if _, err := rt.Engine.Rotate(b.Context(), app, rotator.Request{Actor: operator}); err != nil {
				b.Fatal(err)
			}
			tt.total.Store(0)
			tt.count.Store(0)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if res, err := rt.Engine.Rotate(b.Context(), app, rotator.Request{Actor: operator}); err != nil {
					b.Fatalf("rotation %d: %+v %v", i, res, err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			rtSum := time.Duration(tt.total.Load())
			b.ReportMetric(float64(tt.count.Load())/float64(b.N), "http-calls/op")
			b.ReportMetric(float64(rtSum.Milliseconds())/float64(b.N), "roundtrip-ms/op")
			b.ReportMetric(wall.Seconds()/rtSum.Seconds(), "wall/roundtrips")
		})
	}
}
