//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
	"github.com/prometheus/client_golang/prometheus"
)

// idleWindow is how long BenchmarkDaemonIdle watches an idle daemon's CPU;
// the figure is scaled to one minute.
var idleWindow = envDuration("ECAROTATOR_BENCH_IDLE", 30*time.Second)

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil && d > 0 {
		return d
	}
	return def
}

// BenchmarkDaemonIdle starts `ecarotator run` (a real process, real Vault)
// with 10 and with 10,000 configured apps, side by side, and reports for
// each the start-up time (exec until /readyz answers 200, which includes
// reading every app's path and journal from Vault), the resident memory
// once ready, and the CPU used per minute while idle (nothing due), and the
// 10,000/10 ratios. Run with -benchtime=1x.
func BenchmarkDaemonIdle(b *testing.B) {
	e := newEnv(b, envOptions{})
	ecarotatorBinary(b) // built before any clock starts
	type figures struct {
		startup time.Duration
		rssKB   int64
		cpuMin  time.Duration // CPU per minute idle
	}
	measure := func(n int) figures {
		cfg := e.manyAppsConfig(n)
		start := time.Now()
		p := e.startProc(fmt.Sprintf("idle-%d", n), cfg)
		defer p.stop(b)
		var base string
		addrRe := regexp.MustCompile(`"msg":"http server listening","addr":"([^"]+)"`)
		eventually(b, 2*time.Minute, "listen address", func() bool {
			if m := addrRe.FindStringSubmatch(p.out.String()); m != nil {
				base = "http://" + m[1]
				return true
			}
			if p.exited() {
				b.Fatalf("daemon exited: %s", tail(p.out.String(), 20))
			}
			return false
		})
		eventually(b, 5*time.Minute, "readyz", func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		f := figures{startup: time.Since(start)}
		settle := time.Now().Add(2 * time.Second)
		eventually(b, time.Minute, "settling", func() bool { return time.Now().After(settle) })
		f.rssKB = procRSS(b, p.cmd.Process.Pid)
		c0, t0 := procCPU(b, p.cmd.Process.Pid), time.Now()
		until := t0.Add(idleWindow)
		eventually(b, idleWindow+time.Minute, "idle window", func() bool { return time.Now().After(until) })
		c1, t1 := procCPU(b, p.cmd.Process.Pid), time.Now()
		f.cpuMin = time.Duration(float64(c1-c0) * float64(time.Minute) / float64(t1.Sub(t0)))
		b.Logf("%6d apps: start-up %s, RSS %d KiB, idle CPU %s per minute", n, f.startup.Round(time.Millisecond), f.rssKB, f.cpuMin.Round(time.Microsecond))
		return f
	}
	for i := 0; i < b.N; i++ {
		small, large := measure(10), measure(10000)
		b.ReportMetric(large.startup.Seconds(), "startup-s@10k")
		b.ReportMetric(float64(large.rssKB)/1024, "rss-MiB@10k")
		b.ReportMetric(float64(large.cpuMin.Microseconds())/1000, "idle-cpu-ms/min@10k")
		b.ReportMetric(large.startup.Seconds()/small.startup.Seconds(), "startup-ratio-10k/10")
		b.ReportMetric(float64(large.rssKB)/float64(small.rssKB), "rss-ratio-10k/10")
		b.ReportMetric(float64(large.cpuMin)/math.Max(float64(small.cpuMin), float64(time.Microsecond)), "idle-cpu-ratio-10k/10")
	}
}

// manyAppsConfig writes a config with n apps on the demo Dev Hub, none due
// during the benchmark (weekly, with a fresh max age).
func (e *env) manyAppsConfig(n int) string {
	e.t.Helper()
	return e.manyAppsConfigAt(n, e.vault.Addr, "idle")
}

// manyAppsConfigAt is manyAppsConfig with Vault at vaultAddr (a counting
// proxy in BenchmarkAPIUnderLoad) and files named after tag.
func (e *env) manyAppsConfigAt(n int, vaultAddr, tag string) string {
	e.t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, `vault:
  address: %s
devhubs:
  - name: devhub
    login_url: %s
    my_domain_url: %s
    auth:
      method: jwt
      client_id: 3MVG9DEMO.rotator.consumer.key.0000000000000000000000000000000000000000000001
      username: rotator@devhub.example
      audience: %s
      vault_path: ecarotator/devhubs/devhub
audit:
  file: %s-%d-audit.log
server:
  listen: 127.0.0.1:0
log:
  level: info
apps:
`, vaultAddr, e.sim.LoginURL(), e.sim.OrgURL("devhub"), e.sim.LoginURL(), tag, n)
	for i := range n {
		// Short lines: 50,000 apps must fit the 4 MiB config bound.
		fmt.Fprintf(&sb, "- {name: app%05d, devhub: devhub, eca: Billing, schedule: '@weekly', window: 1h}\n", i)
	}
	p := filepath.Join(e.dir, fmt.Sprintf("%s-%d.yaml", tag, n))
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// procRSS reads VmRSS (KiB) of pid.
func procRSS(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// procCPU returns the CPU time pid's threads have run, in nanoseconds
// (the sum of /proc/<pid>/task/*/schedstat; finer than the 10 ms ticks of
// /proc/<pid>/stat, which an idle daemon never reaches in a minute).
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no schedstat for %d: %v", pid, err)
	}
	var total int64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		total += ns
	}
	return time.Duration(total)
}

// BenchmarkDaemonRotate1000 rotates 1,000 apps spread over 10 simulated Dev
// Hubs (100 each) with 100 ms added to every Salesforce call, through the
// daemon (in-process, real Vault): every app starts past its max age, so all
// are due at once and the per-Dev-Hub concurrency limit is what paces them.
// It reports the total time until every app is rotated against the lower
// bound that limit allows, ceil(100/concurrency) × one rotation alone (timed
// first, under the same latency). The Dev Hubs run secret_access: always_on
// with the simulator's setting on, since toggle mode serialises an org's
// rotations on its secret-access ledger whatever the limit. Run with -benchtime=1x.
func BenchmarkDaemonRotate1000(b *testing.B) {
	const (
		hubs        = 10
		perHub      = 100
		concurrency = 10
		latency     = 100 * time.Millisecond
	)
	e := newEnv(b, envOptions{simSetup: func(c *sfsim.Config) {
		var devhub sfsim.OrgConfig
		for _, o := range c.Orgs {
			if o.DevHub {
				devhub = o
			}
		}
		for h := range hubs {
			o := devhub
			o.Name, o.OrgID, o.Port, o.SecretAccess, o.APILimit = fmt.Sprintf("hub%d", h), fmt.Sprintf("00DBH%010dAAA", h), 0, true, 10000000
			// Users and the rotator's own ECA are per org: the login host
			// finds the org by username and consumer key.
			o.Users = []sfsim.UserConfig{
				{Username: benchUser("rotator", h), Permissions: devhub.Users[0].Permissions},
				{Username: benchUser("integration", h), Permissions: []string{"ApiEnabled"}},
			}
			own := devhub.ECAs[0]
			own.ID, own.PreAuthorizedUsers, own.ClientCredentialsUser = "", []string{benchUser("rotator", h)}, benchUser("rotator", h)
			own.Consumers = []sfsim.ConsumerConfig{{Key: benchRotatorKey(h), Secret: strings.Repeat("9", 64)}}
			o.ECAs = []sfsim.ECAConfig{own}
			for a := range perHub + 1 { // App100: the one rotated alone
				o.ECAs = append(o.ECAs, sfsim.ECAConfig{
					DeveloperName: fmt.Sprintf("App%03d", a), ClientCredentialsUser: benchUser("integration", h),
					Consumers: []sfsim.ConsumerConfig{{Key: benchKey(h, a, 0), Secret: benchSecret(h, a, 0)}},
				})
			}
			c.Orgs = append(c.Orgs, o)
		}
	}})
	// Every app's pair as ecarotator left it two days ago (managed), so the
	// max age (one day) makes all of them due at start.
	rtSetup := e.runtime(wire.RuntimeOptions{NoAudit: true})
	old := time.Now().Add(-48 * time.Hour)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for h := range hubs {
		for a := range perHub + 1 {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				sc := rotator.StoredCredentials{Current: rotator.Credentials{Key: benchKey(h, a, 0), Secret: rotator.NewSecret(benchSecret(h, a, 0))},
					TokenURL: e.sim.TokenURL(fmt.Sprintf("hub%d", h)), RotatedAt: old, RotationID: "setup"}
				if _, err := rtSetup.Vault.WriteCredentials(b.Context(), benchPath(h, a), sc, rotator.WriteOptions{CAS: 0, RotationID: "setup", Adopt: true}); err != nil {
					b.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	e.sim.SetFaults([]sfsim.Fault{{Kind: sfsim.FaultLatency, Latency: sfsim.Duration(latency)}})

	var sb strings.Builder
	fmt.Fprintf(&sb, "vault: {address: %s, lock_ttl: 2m}\ndevhubs:\n", e.vault.Addr)
	for h := range hubs {
		hub := fmt.Sprintf("hub%d", h)
		fmt.Fprintf(&sb, `  - name: %s
    login_url: %s
    my_domain_url: %s
    secret_access: always_on
    concurrency: %d
    auth: {method: jwt, client_id: %s, username: %s, audience: %s, vault_path: ecarotator/devhubs/devhub, own_eca: rotator}
`, hub, e.sim.LoginURL(), e.sim.OrgURL(hub), concurrency, benchRotatorKey(h), benchUser("rotator", h), e.sim.LoginURL())
	}
	sb.WriteString("apps:\n")
	for h := range hubs {
		for a := range perHub {
			fmt.Fprintf(&sb, "  - {name: %s, devhub: hub%d, eca: App%03d, vault_path: %s, schedule: \"@yearly\", max_age: 24h, overlap: {policy: immediate}, verify: {timeout: 1m}}\n",
				benchApp(h, a), h, a, benchPath(h, a))
		}
	}
	// The app timed alone is configured but disabled: the daemon leaves it.
	fmt.Fprintf(&sb, "  - {name: %s, devhub: hub0, eca: App%03d, vault_path: %s, disabled: true, overlap: {policy: immediate}, verify: {timeout: 1m}}\n",
		benchApp(0, perHub), perHub, benchPath(0, perHub))
	sb.WriteString("audit: {file: rotate1000-audit.log}\nscheduler: {retry_initial: 1s, retry_max: 10s}\nlog: {level: warn}\n")
	cfgPath := filepath.Join(e.dir, "rotate1000.yaml")
	if err := os.WriteFile(cfgPath, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		b.Fatal(err)
	}

	for i := 0; i < b.N; i++ {
		// One rotation alone, under the same latency: the unit of the bound.
		rt, err := wire.New(b.Context(), cfg, e.logger(), wire.RuntimeOptions{NoAudit: true})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close()
		one, _ := rt.App(benchApp(0, perHub))
		mark := len(e.sim.Requests())
		t0 := time.Now()
		if _, err := rt.Engine.Rotate(b.Context(), one, rotator.Request{Actor: operator}); err != nil {
			b.Fatalf("single rotation: %v", err)
		}
		single := time.Since(t0)
		// The true floor counts only the Salesforce calls one rotation
		// makes, each at the added latency (Vault and CPU cost nothing).
		sfCalls := len(e.sim.Requests()) - mark
		since := time.Now()

		reg := prometheus.NewRegistry()
		d, err := daemon.New(daemon.Options{Settings: wire.Daemon(cfg), Logger: e.logger(), Registerer: reg, Gatherer: reg, Listen: "-"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		start := time.Now()
		go func() { errc <- d.Run(ctx) }()
		// Progress comes from the scheduler (it records each success with
		// the rotated_at read back from Vault), not from polling Vault.
		eventually(b, 15*time.Minute, "1,000 rotations", func() bool {
			done := 0
			for _, st := range d.Scheduler().Snapshot() {
				if st.LastRotation.After(since) {
					done++
				}
			}
			return done == hubs*perHub
		})
		total := time.Since(start)
		cancel()
		if err := <-errc; err != nil {
			b.Errorf("daemon: %v", err)
		}
		rounds := (perHub + concurrency - 1) / concurrency
		bound := time.Duration(rounds) * single
		b.Logf("1,000 apps, %d orgs, concurrency %d, %s per Salesforce call: total %s, one rotation alone %s, lower bound %d × %s = %s, ratio %.2f",
			hubs, concurrency, latency, total.Round(time.Millisecond), single.Round(time.Millisecond), rounds, single.Round(time.Millisecond), bound.Round(time.Millisecond), total.Seconds()/bound.Seconds())
		b.ReportMetric(total.Seconds(), "total-s")
		b.ReportMetric(bound.Seconds(), "lowerbound-s")
		b.ReportMetric(total.Seconds()/bound.Seconds(), "total/lowerbound")
		b.ReportMetric(single.Seconds(), "one-rotation-s")
		floor := time.Duration(rounds*sfCalls) * latency
		b.Logf("true floor: %d rounds × %d Salesforce calls × %s = %s, ratio %.2f; one rotation alone / its calls × latency = %.2f",
			rounds, sfCalls, latency, floor, total.Seconds()/floor.Seconds(), single.Seconds()/(time.Duration(sfCalls)*latency).Seconds())
		b.ReportMetric(float64(sfCalls), "sf-calls/rotation")
		b.ReportMetric(total.Seconds()/floor.Seconds(), "total/floor")
		b.ReportMetric(single.Seconds()/(time.Duration(sfCalls)*latency).Seconds(), "one-rotation/its-calls")
	}
}

func benchApp(h, a int) string  { return fmt.Sprintf("h%d-app%03d", h, a) }
func benchPath(h, a int) string { return fmt.Sprintf("salesforce/bench/h%d/app%03d", h, a) }
func benchKey(h, a, gen int) string {
	return fmt.Sprintf("3MVG9BENCH.h%02d.a%03d.g%d.%s", h, a, gen, strings.Repeat("0", 50))
}
func benchSecret(h, a, gen int) string {
	return fmt.Sprintf("%02d%03d%d%s", h, a, gen, strings.Repeat("7", 58))
}

func benchUser(who string, h int) string { return fmt.Sprintf("%s@hub%d.example", who, h) }
func benchRotatorKey(h int) string {
	return fmt.Sprintf("3MVG9BENCH.rotator.h%02d.%s", h, strings.Repeat("0", 50))
}
