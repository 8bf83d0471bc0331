//go:build integration

package integration

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// opTransport sums the round trips of every HTTP call and, separately, of
// the calls a metadata rotation cannot do without: listMetadata + retrieve
// + checkRetrieveStatus (retrieve + poll), deploy + checkDeployStatus (for
// the rotating and the flag-clearing deploy), the read of the new pair, and
// the verification token requests.
type opTransport struct {
	base      http.RoundTripper
	total     atomic.Int64
	mandatory atomic.Int64
	calls     atomic.Int64
	mu        sync.Mutex
	ops       map[string]int
}

// mandatoryOps are the SOAP operations counted as mandatory.
var mandatoryOps = []string{"listMetadata", "retrieve", "checkRetrieveStatus", "deploy", "checkDeployStatus"}

func (t *opTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := ""
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/services/Soap/m/"):
		for _, o := range mandatoryOps {
			if bytes.Contains(body, []byte("<met:"+o+">")) {
				op = o
			}
		}
	case r.URL.Path == "/services/oauth2/token" && bytes.Contains(body, []byte("grant_type=client_credentials")):
		op = "verify"
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	d := int64(time.Since(start))
	t.total.Add(d)
	t.calls.Add(1)
	if op != "" {
		t.mandatory.Add(d)
		t.mu.Lock()
		t.ops[op]++
		t.mu.Unlock()
	}
	return resp, err
}

// BenchmarkMetadataRotation measures one metadata rotation of the packaged
// ECA (real Vault, sfsim over loopback with 100 ms per Salesforce call,
// settings always on, new pair read by retrieve, verification at the Dev Hub
// and both subscriber orgs) against the sum of its mandatory round trips,
// and reports the downtime window (deploy done → Vault commit).
func BenchmarkMetadataRotation(b *testing.B) {
	const lat = 100 * time.Millisecond
	e := newEnv(b, envOptions{simSetup: func(c *sfsim.Config) {
		c.Orgs[0].SecretAccess, c.Orgs[0].MetadataSecretAccess = true, true
		c.Behavior.DeployDelay = 0
	}})
	kv := e.vault.Client(b).KVv2("secret")
	if _, err := kv.Put(b.Context(), "salesforce/payroll", map[string]any{
		"consumer_key": payrollInitial.Key, "consumer_secret": payrollInitial.Secret.Reveal(), "token_url": e.sim.TokenURL("devhub"),
	}); err != nil {
		b.Fatal(err)
	}
	raw, _ := os.ReadFile(e.cfgPath)
	cfg := strings.Replace(string(raw), "apps:\n", "apps:\n  - name: payroll\n    devhub: devhub\n    eca: Payroll\n    secret_read: metadata\n    adopt: true\n"+
		"    verify: {token_urls: ["+e.sim.TokenURL("devhub")+", "+e.sim.TokenURL("acme")+", "+e.sim.TokenURL("globex")+"], timeout: 20s}\n", 1)
	cfg = strings.Replace(cfg, "    auth:\n      method: jwt", "    secret_access: always_on\n    auth:\n      method: jwt", 1)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	tt := &opTransport{base: http.DefaultTransport.(*http.Transport).Clone(), ops: map[string]int{}}
	rt := e.runtime(wire.RuntimeOptions{HTTPClient: &http.Client{Transport: tt, Timeout: time.Minute}})
	app, err := rt.App("payroll")
	if err != nil {
		b.Fatal(err)
	}
	// The first rotation adopts the hand-made path and reads the
	// distribution state once; keep it out of the figures.
	if _, err := rt.Engine.Rotate(b.Context(), app, rotator.Request{Actor: operator}); err != nil {
		b.Fatal(err)
	}
	e.sim.SetFaults([]sfsim.Fault{{Kind: sfsim.FaultLatency, Latency: sfsim.Duration(lat)}})
	tt.total.Store(0)
	tt.mandatory.Store(0)
	tt.calls.Store(0)
	tt.ops = map[string]int{}
	var downtime time.Duration
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := rt.Engine.Rotate(b.Context(), app, rotator.Request{Actor: operator})
		if err != nil || res.Strategy != rotator.StrategyMetadata {
			b.Fatalf("rotation %d: %+v %v", i, res, err)
		}
		downtime += res.Downtime
	}
	wall := time.Since(start)
	b.StopTimer()
	mand := time.Duration(tt.mandatory.Load())
	ratio := wall.Seconds() / mand.Seconds()
	b.ReportMetric(float64(tt.calls.Load())/float64(b.N), "http-calls/op")
	b.ReportMetric(float64(mand.Milliseconds())/float64(b.N), "mandatory-ms/op")
	b.ReportMetric(ratio, "wall/mandatory")
	b.ReportMetric(float64(downtime.Milliseconds())/float64(b.N), "downtime-ms/op")
	b.Logf("per op: mandatory calls %v, all HTTP calls %.1f", tt.ops, float64(tt.calls.Load())/float64(b.N))
	if ratio > 1.2 {
		b.Errorf("wall/mandatory = %.2f, want ≤ 1.2", ratio)
	}
}
