//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/config"
	"github.com/ecarotator/ecarotator/internal/logging"
	"github.com/ecarotator/ecarotator/internal/vaulttest"
	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/ecarotator/ecarotator/salesforce"
	"github.com/ecarotator/ecarotator/salesforce/sfsim"
	"go.uber.org/zap"
)

// Initial credentials of the demo landscape (salesforce/sfsim/testdata/demo.yaml).
var initial = map[string]rotator.Credentials{
	"billing":   {Key: "3MVG9DEMO.billing.consumer.key.0000000000000000000000000000000000000000000002", Secret: rotator.NewSecret("B111111111111111111111111111111111111111111111111111111111111111")},
	"support":   {Key: "3MVG9DEMO.support.consumer.key.0000000000000000000000000000000000000000000003", Secret: rotator.NewSecret("5111111111111111111111111111111111111111111111111111111111111111")},
	"analytics": {Key: "3MVG9DEMO.analytics.consumer.key.00000000000000000000000000000000000000000005", Secret: rotator.NewSecret("A111111111111111111111111111111111111111111111111111111111111111")},
}

// consumer ids of the apps in the demo landscape.
var consumerIDs = map[string]struct{ eca, id string }{
	"billing":   {"Billing", "888DH0000000002AAA"},
	"support":   {"Support", "888DH0000000003AAA"},
	"analytics": {"Analytics", "888DH0000000005AAA"},
}

// env is one real landscape: a real Vault server, the simulator on loopback
// and an ecarotator config pointing at both.
type env struct {
	t       testing.TB
	vault   *vaulttest.Server
	sim     *sfsim.Sim
	dir     string
	cfgPath string
	logs    *syncBuf
}

// envOptions tune newEnv.
type envOptions struct {
	overlap  string // billing's overlap block (YAML flow), default salesforce-expiry
	lockTTL  string
	simSetup func(*sfsim.Config)
	verifyTO string
	// persistent starts a file-backed Vault that survives Stop/Restart.
	persistent bool
	// startVault, when set, starts the Vault instead (e.g.
	// vaulttest.StartContainer for the testcontainers path).
	startVault func(testing.TB) *vaulttest.Server
	// auditVaultSink also writes the audit trail to Vault (audit.vault_sink).
	auditVaultSink bool
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.overlap == "" {
		o.overlap = "{policy: salesforce-expiry}"
	}
	if o.lockTTL == "" {
		o.lockTTL = "30s"
	}
	if o.verifyTO == "" {
		o.verifyTO = "20s"
	}
	e := &env{t: t, dir: t.TempDir(), logs: &syncBuf{}}
	switch {
	case o.startVault != nil:
		e.vault = o.startVault(t)
	case o.persistent:
		e.vault = vaulttest.StartPersistent(t)
	default:
		e.vault = vaulttest.Start(t)
	}
	enableAuditTransit(t, e.vault.Client(t))

	scfg, err := sfsim.LoadConfig("../salesforce/sfsim/testdata/demo.yaml")
	if err != nil {
		t.Fatalf("sfsim config: %v", err)
	}
	// The harness default is a real org's worst case as far as we know
	// it: strict profile (reads gated by the secret-access setting) and a
	// setting that applies 2s after it is switched on.
	scfg.Profile = sfsim.ProfileStrict
	if scfg.Behavior.SettingDelay < sfsim.Duration(2*time.Second) {
		scfg.Behavior.SettingDelay = sfsim.Duration(2 * time.Second)
	}
	if o.simSetup != nil {
		o.simSetup(&scfg)
	}
	sim, err := sfsim.New(scfg)
	if err != nil {
		t.Fatalf("sfsim: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("sfsim start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e.sim = sim

	kv := e.vault.Client(t).KVv2("secret")
	pem, err := os.ReadFile("../salesforce/sfsim/testdata/demo-rotator-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "ecarotator/devhubs/devhub", map[string]any{"private_key": string(pem)}); err != nil {
		t.Fatalf("write dev hub key: %v", err)
	}
	// The apps' credentials as an operator set them up by hand (no
	// managed-by marker): ecarotator adopts them on its first rotation.
	for app, c := range initial {
		if _, err := kv.Put(t.Context(), "salesforce/"+app, map[string]any{
			"consumer_key": c.Key, "consumer_secret": c.Secret.Reveal(), "token_url": sim.TokenURL("devhub"),
		}); err != nil {
			t.Fatalf("write initial %s: %v", app, err)
		}
	}

	cfg := fmt.Sprintf(`
vault:
  address: %[1]s
  lock_ttl: %[2]s
devhubs:
  - name: devhub
    login_url: %[3]s
    my_domain_url: %[4]s
    auth:
      method: jwt
      client_id: 3MVG9DEMO.rotator.consumer.key.0000000000000000000000000000000000000000000001
      username: rotator@devhub.example
      audience: auto
      vault_path: ecarotator/devhubs/devhub
      own_eca: rotator
apps:
  - name: billing
    devhub: devhub
    eca: Billing
    overlap: %[7]s
    verify: {token_urls: [%[5]s, %[6]s, %[8]s], timeout: %[9]s}
    adopt: true
  - name: support
    devhub: devhub
    eca: Support
    consumer_id: 888DH0000000003AAA
    verify: {token_urls: [%[5]s, %[6]s], timeout: %[9]s}
    adopt: true
  - name: analytics
    devhub: devhub
    eca: Analytics
    verify: {token_urls: [%[5]s, %[8]s], timeout: %[9]s}
    adopt: true
audit:
  file: audit.log
scheduler:
  orphan_after: 3
log:
  level: debug
`, e.vault.Addr, o.lockTTL, sim.LoginURL(), sim.OrgURL("devhub"),
		sim.TokenURL("devhub"), sim.TokenURL("acme"), o.overlap, sim.TokenURL("globex"), o.verifyTO)
	if o.auditVaultSink {
		cfg = strings.Replace(cfg, "audit:\n  file: audit.log\n", "audit:\n  file: audit.log\n  vault_sink: {enabled: true}\n", 1)
	}
	e.cfgPath = filepath.Join(e.dir, "ecarotator.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// settingApplied moves the simulator's clock past the secret-access
// setting's delay, as a person working by hand waits for it to apply.
func (e *env) settingApplied() {
	e.sim.Advance(time.Duration(e.sim.Behavior().SettingDelay))
}

func (e *env) getenv(k string) string {
	if k == "VAULT_TOKEN" {
		return e.vault.Token
	}
	return ""
}

func (e *env) config() *config.Config {
	e.t.Helper()
	cfg, err := config.Load(e.cfgPath, e.getenv)
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	return cfg
}

// runtime wires ecarotator in-process, logging to e.logs.
func (e *env) runtime(o wire.RuntimeOptions) *wire.Runtime {
	e.t.Helper()
	log := e.logger()
	rt, err := wire.New(e.t.Context(), e.config(), log, o)
	if err != nil {
		e.t.Fatalf("wire: %v", err)
	}
	e.t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func (e *env) logger() *zap.Logger {
	log, err := logging.New(e.logs, logging.FormatJSON, "debug")
	if err != nil {
		e.t.Fatal(err)
	}
	return log
}

// stored reads what applications see at the app's path.
func (e *env) stored(rt *wire.Runtime, app string) (rotator.StoredCredentials, rotator.StoreMeta) {
	e.t.Helper()
	sc, meta, err := rt.Vault.ReadCredentials(e.t.Context(), "salesforce/"+app)
	if err != nil {
		e.t.Fatalf("read %s: %v", app, err)
	}
	return sc, meta
}

// verifyAt requests a token with c at url: nil, or an error matching
// rotator.ErrRejected.
func verifyAt(ctx context.Context, url string, c rotator.Credentials) error {
	return salesforce.NewVerifier(salesforce.VerifierOptions{RequestTimeout: 5 * time.Second}).Verify(ctx, url, c)
}

// mustAuth asserts c authenticates at every url.
func (e *env) mustAuth(what string, c rotator.Credentials, urls ...string) {
	e.t.Helper()
	for _, u := range urls {
		if err := verifyAt(e.t.Context(), u, c); err != nil {
			e.t.Errorf("%s: pair %s should authenticate at %s: %v", what, c.Key, u, err)
		}
	}
}

// mustReject asserts Salesforce rejects c at every url.
func (e *env) mustReject(what string, c rotator.Credentials, urls ...string) {
	e.t.Helper()
	for _, u := range urls {
		if err := verifyAt(e.t.Context(), u, c); !errors.Is(err, rotator.ErrRejected) {
			e.t.Errorf("%s: pair %s should be rejected at %s, got %v", what, c.Key, u, err)
		}
	}
}

// stagePosts counts POST staged requests that Salesforce applied.
func (e *env) stagePosts() int {
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Route == sfsim.RouteStaged && r.Method == "POST" && r.Status >= 200 && r.Status < 300 {
			n++
		}
	}
	return n
}

// consumer returns Salesforce's view of an app's consumer, with secrets.
func (e *env) consumer(app string) sfsim.ConsumerState {
	e.t.Helper()
	c := consumerIDs[app]
	st, err := e.sim.ConsumerState("devhub", c.eca, c.id)
	if err != nil {
		e.t.Fatalf("consumer state %s: %v", app, err)
	}
	return st
}

// secretsSeen lists every consumer secret Salesforce holds or held for the
// apps, to check that none leaks.
func (e *env) secretsSeen() []string {
	var out []string
	for app, c := range initial {
		out = append(out, c.Secret.Reveal())
		st := e.consumer(app)
		out = append(out, st.Secret)
		if st.Staged != nil && st.Staged.Secret != "" {
			out = append(out, st.Staged.Secret)
		}
	}
	return out
}

// binary builds ecarotator once (with the crashtest tag) for subprocess tests.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func ecarotatorBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ecarotator-it-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ecarotator")
		cmd := exec.Command("go", "build", "-tags", "crashtest", "-o", binPath, "../cmd/ecarotator")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build ecarotator: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cli runs the ecarotator binary against e; extraEnv adds variables.
func (e *env) cli(extraEnv []string, args ...string) (exitCode int, killed bool, stdout, stderr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ecarotatorBinary(e.t), append([]string{"-c", e.cfgPath}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "VAULT_TOKEN=" + e.vault.Token}, extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == -1 {
		killed = strings.Contains(err.Error(), "killed")
	}
	return code, killed, out.String(), errb.String()
}

// syncBuf collects log output from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
