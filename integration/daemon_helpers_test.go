//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// daemonConfig is the part of a daemon test's config that varies.
type daemonConfig struct {
	Schedule     string // every app's schedule
	Window       string
	MaxAge       string
	Overlap      string // YAML flow
	LockTTL      string
	SecretAccess string // toggle | always_on
	Concurrency  int
	APIBudget    string // devhub api_budget_threshold (default 0.8)
	Listen       string
	AuditFile    string
	Extra        string // appended verbatim (notifications, ...)
}

var daemonConfigTmpl = template.Must(template.New("cfg").Parse(`
vault:
  address: {{.Vault}}
  lock_ttl: {{.C.LockTTL}}
devhubs:
  - name: devhub
    login_url: {{.Login}}
    my_domain_url: {{.DevHub}}
    secret_access: {{.C.SecretAccess}}
    concurrency: {{.C.Concurrency}}
    api_budget_threshold: {{.C.APIBudget}}
    auth:
      method: jwt
      client_id: 3MVG9DEMO.rotator.consumer.key.0000000000000000000000000000000000000000000001
      username: rotator@devhub.example
      audience: {{.Login}}
      vault_path: ecarotator/devhubs/devhub
      own_eca: rotator
apps:
  - name: billing
    devhub: devhub
    eca: Billing
    schedule: "{{.C.Schedule}}"
    window: {{.C.Window}}
    max_age: {{.C.MaxAge}}
    overlap: {{.C.Overlap}}
    verify: {token_urls: [{{.TokDevHub}}, {{.TokAcme}}, {{.TokGlobex}}], timeout: 20s}
    adopt: true
  - name: support
    devhub: devhub
    eca: Support
    consumer_id: 888DH0000000003AAA
    schedule: "{{.C.Schedule}}"
    window: {{.C.Window}}
    max_age: {{.C.MaxAge}}
    overlap: {{.C.Overlap}}
    verify: {token_urls: [{{.TokDevHub}}, {{.TokAcme}}], timeout: 20s}
    adopt: true
  - name: analytics
    devhub: devhub
    eca: Analytics
    schedule: "{{.C.Schedule}}"
    window: {{.C.Window}}
    max_age: {{.C.MaxAge}}
    overlap: {{.C.Overlap}}
    verify: {token_urls: [{{.TokDevHub}}, {{.TokGlobex}}], timeout: 20s}
    adopt: true
scheduler:
  retry_initial: 1s
  retry_max: 10s
  orphan_after: 5
  shutdown_grace: 10s
audit:
  file: {{.C.AuditFile}}
server:
  listen: "{{.C.Listen}}"
log:
  level: debug
{{.C.Extra}}
`))

// writeDaemonConfig writes a config for e's Vault and simulator and returns
// its path.
func (e *env) writeDaemonConfig(name string, c daemonConfig) string {
	e.t.Helper()
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Schedule, "@yearly")
	def(&c.Window, "1s")
	def(&c.MaxAge, "720h")
	def(&c.Overlap, "{policy: immediate}")
	def(&c.LockTTL, "30s")
	def(&c.SecretAccess, "toggle")
	def(&c.Listen, "127.0.0.1:0")
	def(&c.APIBudget, "0.8")
	def(&c.AuditFile, name+"-audit.log")
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	var b bytes.Buffer
	err := daemonConfigTmpl.Execute(&b, map[string]any{
		"C": c, "Vault": e.vault.Addr, "Login": e.sim.LoginURL(), "DevHub": e.sim.OrgURL("devhub"),
		"TokDevHub": e.sim.TokenURL("devhub"), "TokAcme": e.sim.TokenURL("acme"), "TokGlobex": e.sim.TokenURL("globex"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// startDaemon runs a daemon in-process on 127.0.0.1:0 and returns it with
// its base URL; the test's cleanup stops it and checks Run's error. Each
// prepare step (e.g. (*daemon.Daemon).EnableMFA, as `ecarotator run` does)
// runs between New and Run.
func (e *env) startDaemon(cfgPath string, o daemon.Options, prepare ...func(*daemon.Daemon) error) (*daemon.Daemon, string) {
	e.t.Helper()
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	o.Settings, o.ConfigPath = wire.Daemon(cfg), cfgPath
	if o.Logger == nil {
		o.Logger = e.logger()
	}
	if o.LoadSettings == nil {
		o.LoadSettings = func(p string) (*wire.DaemonSettings, error) { return wire.LoadDaemon(p, e.getenv) }
	}
	if o.Registerer == nil {
		reg := prometheus.NewRegistry()
		o.Registerer, o.Gatherer = reg, reg
	}
	d, err := daemon.New(o)
	if err != nil {
		e.t.Fatalf("daemon.New: %v", err)
	}
	for _, p := range prepare {
		if err := p(d); err != nil {
			e.t.Fatalf("prepare daemon: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				e.t.Errorf("daemon Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("daemon did not stop within 30s")
		}
	})
	if d.Addr() == nil {
		return d, "" // server disabled
	}
	return d, "http://" + d.Addr().String()
}

// eventually polls cond until it holds or timeout passes. Real processes
// and a real Vault run on the wall clock, so integration tests wait on it.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// httpDo sends a request and returns the status and body.
func httpDo(t testing.TB, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// proc is one `ecarotator run` child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
	err  error
}

// startProc starts the crashtest-tagged binary with `run` on cfgPath.
func (e *env) startProc(name, cfgPath string, extraEnv ...string) *proc {
	e.t.Helper()
	p := &proc{name: name, out: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(ecarotatorBinary(e.t), "-c", cfgPath, "run")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "VAULT_TOKEN=" + e.vault.Token}, extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop(e.t)
		if e.t.Failed() {
			e.t.Logf("--- %s output (tail) ---\n%s", name, tail(p.out.String(), 40))
		}
	})
	return p
}

// stop sends SIGTERM and waits; SIGKILL after 30s.
func (p *proc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// promotes returns, per consumer, the times Salesforce applied a promote
// (PATCH staged item with {"command":"rotate"}).
func (e *env) promotes() map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, r := range e.sim.Requests() {
		if r.Route == "staged-item" && r.Method == http.MethodPatch && r.Status >= 200 && r.Status < 300 {
			out[consumerOfPath(r.Path)] = append(out[consumerOfPath(r.Path)], r.Time)
		}
	}
	return out
}

// consumerOfPath maps a staged-item URL path to the app whose consumer it
// names.
func consumerOfPath(path string) string {
	for app, c := range consumerIDs {
		if strings.Contains(path, c.id) {
			return app
		}
	}
	return fmt.Sprintf("unknown(%s)", path)
}

// runtimeFor wires an in-process runtime on cfgPath (to read Vault).
func (e *env) runtimeFor(cfgPath string) *wire.Runtime {
	e.t.Helper()
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		e.t.Fatal(err)
	}
	rt, err := wire.New(e.t.Context(), cfg, e.logger(), wire.RuntimeOptions{NoAudit: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = rt.Close() })
	return rt
}
