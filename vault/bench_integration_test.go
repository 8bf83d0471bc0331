//go:build integration

package vault

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/rotator"
)

// Benchmarks compare the adapter with hand-written vault/api calls doing
// the same job against the same real server, in the same process. Each
// reports Vault HTTP requests per operation (req/op) next to ns/op, which
// explains most of the difference: the adapter's extra requests are its
// safety checks (managed-by marker, metadata, lease ownership).
//
//	go test -run '^$' -bench . -benchtime 2s -tags integration ./vault/

// countingTransport counts requests that reach Vault.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func benchClients(b *testing.B) (*Client, *vaultapi.Client, *countingTransport) {
	b.Helper()
	srv := vaulttest.Start(b)
	ct := &countingTransport{next: cleanhttp.DefaultPooledTransport()}
	hc := &http.Client{Transport: ct}
	c := rootClient(b, srv, func(o *Options) { o.HTTPClient = hc; o.Logger = nil })
	cfg := vaultapi.DefaultConfig()
	cfg.Address = srv.Addr
	cfg.HttpClient = hc
	cfg.MaxRetries = 0
	raw, err := vaultapi.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	raw.SetToken(srv.Token)
	return c, raw, ct
}

func reportReqs(b *testing.B, ct *countingTransport, start int64) {
	b.ReportMetric(float64(ct.n.Load()-start)/float64(b.N), "req/op")
}

func BenchmarkKVCheckAndSetWrite(b *testing.B) {
	c, raw, ct := benchClients(b)
	ctx := context.Background()
	sc := creds("bench-key", "bench-secret")

	b.Run("adapter WriteCredentials", func(b *testing.B) {
		path := fmt.Sprintf("salesforce/bench-%d", time.Now().UnixNano())
		v, err := c.WriteCredentials(ctx, path, sc, rotator.WriteOptions{RotationID: "b"})
		if err != nil {
			b.Fatal(err)
		}
		start := ct.n.Load()
		b.ResetTimer()
		for range b.N {
			if v, err = c.WriteCredentials(ctx, path, sc, rotator.WriteOptions{CAS: v, RotationID: "b"}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportReqs(b, ct, start)
	})

	b.Run("adapter journal Save", func(b *testing.B) {
		app := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		e := rotator.JournalEntry{App: app, Step: rotator.StepStage, Pending: sc.Current}
		v, err := c.Save(ctx, app, e, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := ct.n.Load()
		b.ResetTimer()
		for range b.N {
			if v, err = c.Save(ctx, app, e, v, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportReqs(b, ct, start)
	})

	b.Run("raw vault/api cas write", func(b *testing.B) {
		path := fmt.Sprintf("secret/data/salesforce/raw-%d", time.Now().UnixNano())
		data := encodeCredentials(sc)
		v := 0
		start := ct.n.Load()
		b.ResetTimer()
		for range b.N {
			s, err := raw.Logical().WriteWithContext(ctx, path, map[string]any{"options": map[string]any{"cas": v}, "data": data})
			if err != nil {
				b.Fatal(err)
			}
			v = toInt(s.Data["version"])
		}
		b.StopTimer()
		reportReqs(b, ct, start)
	})
}

func BenchmarkLockAcquireRelease(b *testing.B) {
	c, raw, ct := benchClients(b)
	ctx := context.Background()

	b.Run("adapter Acquire+Release", func(b *testing.B) {
		name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		start := ct.n.Load()
		b.ResetTimer()
		for range b.N {
			l, err := c.Acquire(ctx, name, "bench", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Release(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportReqs(b, ct, start)
	})

	// The same protocol by hand: read the lock, CAS-write the holder, read
	// it again and CAS-write it free, with no checks beyond the CAS.
	b.Run("raw vault/api read+cas write x2", func(b *testing.B) {
		path := fmt.Sprintf("secret/data/ecarotator/locks/raw-%d", time.Now().UnixNano())
		version := func() int {
			s, err := raw.Logical().ReadWithContext(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			if s == nil {
				return 0
			}
			md, _ := s.Data["metadata"].(map[string]any)
			return toInt(md["version"])
		}
		write := func(v int, holder string) {
			_, err := raw.Logical().WriteWithContext(ctx, path, map[string]any{
				"options": map[string]any{"cas": v},
				"data":    map[string]any{"holder": holder, "fence": v + 1, "expires_at": time.Now().Add(time.Minute).Format(time.RFC3339Nano)},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		start := ct.n.Load()
		b.ResetTimer()
		for range b.N {
			write(version(), "bench")
			write(version(), "")
		}
		b.StopTimer()
		reportReqs(b, ct, start)
	})
}
