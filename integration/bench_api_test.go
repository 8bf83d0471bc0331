//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// vaultCounter is a reverse proxy in front of the real Vault that counts
// the requests the daemon makes.
type vaultCounter struct {
	n   atomic.Int64
	srv *httptest.Server
}

func newVaultCounter(t testing.TB, target string) *vaultCounter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &vaultCounter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// startedDaemon is a daemon process with its API base URL and start-up
// time (exec until /readyz answers 200).
type startedDaemon struct {
	p       *proc
	base    string
	began   time.Time
	startup time.Duration
}

func (e *env) startDaemonReady(t testing.TB, name, cfg string) startedDaemon {
	t.Helper()
	start := time.Now()
	p := e.startProc(name, cfg)
	var base string
	addrRe := regexp.MustCompile(`"msg":"http server listening","addr":"([^"]+)"`)
	// Polled every 5 ms (not eventually's 100 ms): the figure is the
	// start-up time itself.
	poll(t, 5*time.Minute, "readyz", func() bool {
		if base == "" {
			if m := addrRe.FindStringSubmatch(p.out.String()); m != nil {
				base = "http://" + m[1]
			} else if p.exited() {
				t.Fatalf("daemon exited: %s", tail(p.out.String(), 20))
			}
			return false
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return startedDaemon{p: p, base: base, began: start, startup: time.Since(start)}
}

// poll is eventually with a 5 ms tick.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// loadFigures are one run of the load generator.
type loadFigures struct {
	sent, ok, shed int
	p50, p99       time.Duration
}

// drive sends GET url at rate per second for d from an open-loop Go load
// generator (each request in its own goroutine, a 5 s client timeout) and
// returns the success rate and latency percentiles.
func drive(url, token string, rate int, d time.Duration) loadFigures {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var (
		mu   sync.Mutex
		lats []time.Duration
		f    loadFigures
		wg   sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	start := time.Now()
	for i := range total {
		// Open loop: request i leaves at start+i*interval whatever the
		// answers before it did.
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("X-Vault-Token", token)
			t0 := time.Now()
			resp, err := client.Do(req)
			lat := time.Since(t0)
			code := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, lat)
			switch code {
			case http.StatusOK:
				f.ok++
			case http.StatusServiceUnavailable:
				f.shed++
			}
		})
	}
	wg.Wait()
	f.sent = total
	slices.Sort(lats)
	f.p50 = lats[len(lats)/2]
	f.p99 = lats[min(len(lats)-1, len(lats)*99/100)]
	return f
}

// BenchmarkAPIUnderLoad drives GET /api/v1/apps (the first page) at 500
// requests per second for 10 s against a daemon process with 3 apps and
// one with 10,000, and reports the success rate, p50/p99 latency, the RSS
// growth over the load and the Vault requests the load caused (counted by
// a proxy between the daemon and Vault) per HTTP request. It fails when
// the issue 14 limits are missed: ≥ 99.9% success, p99 < 50 ms (3 apps) /
// < 200 ms (a page of 10,000 apps), RSS growth < 20 MiB, Vault requests ≤
// 1% of HTTP requests. Run with -benchtime=1x.
// ECAROTATOR_BENCH_LOAD overrides the 10 s.
func BenchmarkAPIUnderLoad(b *testing.B) {
	e := newEnv(b, envOptions{})
	ecarotatorBinary(b)
	window := envDuration("ECAROTATOR_BENCH_LOAD", 10*time.Second)
	const rate = 500
	type result struct {
		loadFigures
		rssGrowthKB int64
		vaultReqs   int64
	}
	measure := func(n int, p99Limit time.Duration) result {
		vc := newVaultCounter(b, e.vault.Addr)
		d := e.startDaemonReady(b, fmt.Sprintf("load-%d", n), e.manyAppsConfigAt(n, vc.srv.URL, "load"))
		defer d.p.stop(b)
		// Steady state, cold caches: every app's path read (the daemon's
		// own log line), no API request made yet.
		eventually(b, 5*time.Minute, "every app's path read", func() bool { return strings.Contains(d.p.out.String(), `"msg":"app paths read"`) })
		rss0 := procRSS(b, d.p.cmd.Process.Pid)
		v0 := vc.n.Load()
		f := drive(d.base+"/api/v1/apps", e.vault.Token, rate, window)
		r := result{loadFigures: f, vaultReqs: vc.n.Load() - v0}
		r.rssGrowthKB = procRSS(b, d.p.cmd.Process.Pid) - rss0
		succ := float64(f.ok) / float64(f.sent)
		perReq := float64(r.vaultReqs) / float64(f.sent)
		b.Logf("%5d apps: %d requests at %d/s: %.2f%% ok (%d shed), p50 %s, p99 %s, RSS growth %d KiB, %d Vault requests (%.3f%% of HTTP)",
			n, f.sent, rate, 100*succ, f.shed, f.p50.Round(10*time.Microsecond), f.p99.Round(10*time.Microsecond), r.rssGrowthKB, r.vaultReqs, 100*perReq)
		if succ < 0.999 {
			b.Errorf("%d apps: success %.3f%% < 99.9%%", n, 100*succ)
		}
		if f.p99 >= p99Limit {
			b.Errorf("%d apps: p99 %s ≥ %s", n, f.p99, p99Limit)
		}
		if r.rssGrowthKB >= 20<<10 {
			b.Errorf("%d apps: RSS grew %d KiB ≥ 20 MiB", n, r.rssGrowthKB)
		}
		if perReq > 0.01 {
			b.Errorf("%d apps: %d Vault requests for %d HTTP requests > 1%%", n, r.vaultReqs, f.sent)
		}
		return r
	}
	for i := 0; i < b.N; i++ {
		small := measure(3, 50*time.Millisecond)
		large := measure(10000, 200*time.Millisecond)
		b.ReportMetric(float64(small.p99.Microseconds())/1000, "p99-ms@3")
		b.ReportMetric(float64(large.p99.Microseconds())/1000, "p99-ms@10k")
		b.ReportMetric(100*float64(small.ok)/float64(small.sent), "ok-%@3")
		b.ReportMetric(100*float64(large.ok)/float64(large.sent), "ok-%@10k")
		b.ReportMetric(float64(small.rssGrowthKB)/1024, "rss-growth-MiB@3")
		b.ReportMetric(float64(large.rssGrowthKB)/1024, "rss-growth-MiB@10k")
		b.ReportMetric(100*float64(small.vaultReqs)/float64(small.sent), "vault-req-%@3")
		b.ReportMetric(100*float64(large.vaultReqs)/float64(large.sent), "vault-req-%@10k")
		b.ReportMetric(float64(large.p99)/float64(max(small.p99, time.Microsecond)), "p99-ratio-10k/3")
	}
}

// BenchmarkDaemonStartup starts `ecarotator run` with 1,000, 10,000 and
// 50,000 apps and reports each start-up time (exec until /readyz answers
// 200) and RSS once ready, with the ratios 10k/1k and 50k/10k against the
// ratio of app counts (≤ 1 means no worse than linear). It fails when the
// 10,000-app start-up takes 1 s or more or its RSS reaches 48 MiB, or when
// start-up grows worse than linearly (with a 1.5× allowance for noise on a
// shared machine). Run with -benchtime=1x.
func BenchmarkDaemonStartup(b *testing.B) {
	e := newEnv(b, envOptions{})
	ecarotatorBinary(b)
	type figures struct {
		startup     time.Duration
		rssKB       int64 // once ready
		seeded      time.Duration
		rssSeededKB int64 // once every app's path was read
	}
	// The best of 3 start-ups (the machine is shared; the figure is what
	// the daemon needs, not what its neighbours took), then the seed of
	// the last one is waited for.
	measure := func(n int) figures {
		cfg := e.manyAppsConfigAt(n, e.vault.Addr, "start")
		var f figures
		var d startedDaemon
		for i := range 3 {
			d = e.startDaemonReady(b, fmt.Sprintf("start-%d-%d", n, i), cfg)
			if rss := procRSS(b, d.p.cmd.Process.Pid); i == 0 || d.startup < f.startup {
				f.startup, f.rssKB = d.startup, rss
			}
			if i < 2 {
				d.p.stop(b)
			}
		}
		defer d.p.stop(b)
		eventually(b, 5*time.Minute, "every app's path read", func() bool { return strings.Contains(d.p.out.String(), `"msg":"app paths read"`) })
		f.seeded = time.Since(d.began)
		settle := time.Now().Add(time.Second)
		eventually(b, time.Minute, "settling", func() bool { return time.Now().After(settle) })
		f.rssSeededKB = procRSS(b, d.p.cmd.Process.Pid)
		b.Logf("%6d apps: start-up (ready) %s, RSS %d KiB; every path read after %s, RSS then %d KiB",
			n, f.startup.Round(time.Millisecond), f.rssKB, f.seeded.Round(time.Millisecond), f.rssSeededKB)
		return f
	}
	for i := 0; i < b.N; i++ {
		k1, k10, k50 := measure(1000), measure(10000), measure(50000)
		b.ReportMetric(k1.startup.Seconds(), "startup-s@1k")
		b.ReportMetric(k10.startup.Seconds(), "startup-s@10k")
		b.ReportMetric(k50.startup.Seconds(), "startup-s@50k")
		b.ReportMetric(float64(k10.rssKB)/1024, "rss-MiB@10k")
		b.ReportMetric(float64(k50.rssKB)/1024, "rss-MiB@50k")
		b.ReportMetric(float64(k10.rssSeededKB)/1024, "rss-seeded-MiB@10k")
		b.ReportMetric(k10.seeded.Seconds(), "seeded-s@10k")
		// Start-up growth per app-count growth: ≤ 1 is linear or better.
		lin10 := (k10.startup.Seconds() / k1.startup.Seconds()) / 10
		lin50 := (k50.startup.Seconds() / k10.startup.Seconds()) / 5
		b.ReportMetric(lin10, "startup-growth/linear-1k→10k")
		b.ReportMetric(lin50, "startup-growth/linear-10k→50k")
		if k10.startup >= time.Second {
			b.Errorf("10,000 apps: start-up %s ≥ 1s", k10.startup)
		}
		if k10.rssKB >= 48<<10 || k10.rssSeededKB >= 48<<10 {
			b.Errorf("10,000 apps: RSS %d KiB ready, %d KiB seeded: ≥ 48 MiB", k10.rssKB, k10.rssSeededKB)
		}
		if lin10 > 1.5 || lin50 > 1.5 {
			b.Errorf("start-up grows worse than linearly: %.2f (1k→10k), %.2f (10k→50k) of linear", lin10, lin50)
		}
	}
}
