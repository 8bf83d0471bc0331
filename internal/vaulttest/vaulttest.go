// Package vaulttest gives a test a running, real HashiCorp Vault server.
//
// It looks, in order, for: an external server (VAULT_ADDR and VAULT_TOKEN set
// in the environment), the Vault binary built by `make vault` (cached outside
// the checkout, see BinaryPath), then a Docker engine for testcontainers-go's
// Vault module. With ECAROTATOR_REQUIRE_VAULT=1 (CI sets it) finding none
// fails the test instead of skipping it. StartContainer takes the
// testcontainers path on purpose.
package vaulttest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	tcvault "github.com/testcontainers/testcontainers-go/modules/vault"
)

// Version is the Vault release the tools module builds (tools/vault/go.mod).
const Version = "1.19.5"

// RequireEnv names the variable that turns "no Vault found" into a failure.
const RequireEnv = "ECAROTATOR_REQUIRE_VAULT"

// BinaryEnv overrides the path of the Vault binary.
const BinaryEnv = "ECAROTATOR_VAULT_BIN"

// RequireDockerEnv names the variable that turns "no Docker engine" into a
// failure for the tests that need one (CI sets it).
const RequireDockerEnv = "ECAROTATOR_REQUIRE_DOCKER"

// ImageEnv overrides the image the testcontainers path runs.
const ImageEnv = "ECAROTATOR_VAULT_IMAGE"

// LocalImage is the Vault image `make images` builds FROM scratch from the
// cached binary (scripts/images.sh). The localhost/ prefix means it is
// never pulled from Docker Hub.
const LocalImage = "localhost/ecarotator-vault:" + Version

// OfficialImage is HashiCorp's image, the testcontainers path's fallback
// where a registry can be reached.
const OfficialImage = "hashicorp/vault:" + Version

// ryukDisabledEnv is testcontainers-go's documented switch for its reaper
// container, whose image cannot be pulled where no registry is reachable.
const ryukDisabledEnv = "TESTCONTAINERS_RYUK_DISABLED"

// hostOverrideEnv is testcontainers-go's documented variable for the host
// where published ports are reached.
const hostOverrideEnv = "TESTCONTAINERS_HOST_OVERRIDE"

// localDockerSocket reports whether the engine is reached through a unix
// socket on this machine (DOCKER_HOST unset or unix://).
func localDockerSocket() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// Server is a Vault server a test can use.
type Server struct {
	Addr    string // http://127.0.0.1:PORT
	Token   string // root token
	Version string // as reported by sys/seal-status
	Source  string // "external", "binary" or "testcontainers"
	Bin     string // path of the vault binary (Source "binary" only)
	// Image and ContainerID name the container (Source "testcontainers").
	Image       string
	ContainerID string

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	port      int
	unsealKey string
	dataDir   string // persistent mode: raft storage directory
	cfgFile   string
	logBuf    *syncBuffer
}

// BinaryPath returns where `make vault` caches the Vault binary:
// $ECAROTATOR_VAULT_BIN, else $XDG_CACHE_HOME (or ~/.cache)/ecarotator/vault/VERSION/vault.
func BinaryPath() string {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "ecarotator", "vault", Version, "vault")
}

// Start returns a running Vault for t, stopped at the end of the test. The
// server has KV v2 mounted at secret/ (dev mode).
func Start(t testing.TB) *Server {
	t.Helper()
	if addr, tok := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN"); addr != "" && tok != "" {
		s := &Server{Addr: addr, Token: tok, Source: "external"}
		s.readVersion(t)
		return s
	}
	if bin := BinaryPath(); fileExists(bin) {
		s := &Server{Source: "binary", Bin: bin}
		s.startDev(t)
		return s
	}
	s, err := startContainer(t)
	if err == nil {
		return s
	}
	t.Logf("vaulttest: testcontainers Vault unavailable: %v", err)
	noVault(t, "no Vault: set VAULT_ADDR+VAULT_TOKEN, run `make vault` (builds "+BinaryPath()+"), or start a Docker engine")
	return nil
}

// StartPersistent returns a Vault started from the cached binary with raft
// storage, initialised and unsealed, KV v2 at secret/. Unlike Start its data
// survives Stop/Restart, for tests that take Vault away mid-operation.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	bin := BinaryPath()
	if !fileExists(bin) {
		noVault(t, "persistent Vault needs the binary built by `make vault` at "+bin)
		return nil
	}
	s := &Server{Source: "binary", Bin: bin, dataDir: t.TempDir()}
	s.port = freePort(t)
	s.Addr = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.cfgFile = filepath.Join(t.TempDir(), "vault.hcl")
	// Integrated storage (raft): the only persistent backend in the
	// `minimal` build; a single node elects itself after unseal.
	cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "vaulttest"
}
listener "tcp" {
  address = "127.0.0.1:%d"
  tls_disable = true
}
disable_mlock = true
api_addr = %q
cluster_addr = "http://127.0.0.1:%d"
`, s.dataDir, s.port, s.Addr, freePort(t))
	if err := os.WriteFile(s.cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatalf("vaulttest: write config: %v", err)
	}
	s.spawn(t, "server", "-config="+s.cfgFile)
	t.Cleanup(s.Stop)
	s.waitHTTP(t)
	c := s.rawClient(t, "")
	init, err := c.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vaulttest: init: %v\n%s", err, s.logBuf.String())
	}
	s.Token = init.RootToken
	s.unsealKey = init.Keys[0]
	if err := s.Unseal(); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	c.SetToken(s.Token)
	waitFor(t, time.Minute, func() error {
		return c.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	})
	s.waitKV(t)
	s.readVersion(t)
	return s
}

func (s *Server) startDev(t testing.TB) {
	t.Helper()
	s.Token = "root-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s.port = freePort(t)
		s.Addr = fmt.Sprintf("http://127.0.0.1:%d", s.port)
		s.spawn(t, "server", "-dev", "-dev-root-token-id="+s.Token,
			fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", s.port), "-dev-no-store-token")
		if lastErr = s.tryWaitHTTP(30 * time.Second); lastErr == nil {
			break
		}
		s.Stop() // port taken between probe and bind: try another
	}
	if lastErr != nil {
		t.Fatalf("vaulttest: dev server did not start: %v\n%s", lastErr, s.logBuf.String())
	}
	t.Cleanup(s.Stop)
	s.waitKV(t)
	s.readVersion(t)
}

var unsealRe = regexp.MustCompile(`Unseal Key: (\S+)`)

func (s *Server) scrapeUnsealKey() string {
	if m := unsealRe.FindStringSubmatch(s.logBuf.String()); m != nil {
		return m[1]
	}
	return ""
}

func (s *Server) spawn(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR=", "VAULT_TOKEN=", "SKIP_SETCAP=1")
	s.logBuf = &syncBuffer{}
	cmd.Stdout = s.logBuf
	cmd.Stderr = s.logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("vaulttest: start %s: %v", s.Bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
}

// Stop kills the server process (no-op for external servers). Safe to call
// more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// Restart starts a stopped persistent server again on the same address and
// unseals it; its data is intact.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cfgFile == "" {
		t.Fatalf("vaulttest: Restart needs StartPersistent")
	}
	s.Stop()
	s.spawn(t, "server", "-config="+s.cfgFile)
	s.waitHTTP(t)
	if err := s.Unseal(); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	s.waitKV(t)
}

// Seal seals the server.
func (s *Server) Seal() error {
	c, err := s.newClient(s.Token)
	if err != nil {
		return err
	}
	return c.Sys().Seal()
}

// Unseal unseals the server with the key captured at start.
func (s *Server) Unseal() error {
	if s.unsealKey == "" {
		// Dev mode prints its unseal key in a banner shortly after the
		// listener answers; read it when first needed.
		s.unsealKey = s.scrapeUnsealKey()
	}
	if s.unsealKey == "" {
		return errors.New("vaulttest: unseal key unknown for this server")
	}
	c, err := s.newClient("")
	if err != nil {
		return err
	}
	st, err := c.Sys().Unseal(s.unsealKey)
	if err != nil {
		return fmt.Errorf("vaulttest: unseal: %w", err)
	}
	if st.Sealed {
		return errors.New("vaulttest: still sealed after unseal")
	}
	return nil
}

// Client returns a vault/api client for the server with the root token.
func (s *Server) Client(t testing.TB) *vaultapi.Client {
	t.Helper()
	return s.rawClient(t, s.Token)
}

func (s *Server) rawClient(t testing.TB, token string) *vaultapi.Client {
	t.Helper()
	c, err := s.newClient(token)
	if err != nil {
		t.Fatalf("vaulttest: client: %v", err)
	}
	return c
}

func (s *Server) newClient(token string) (*vaultapi.Client, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	// Generous: raft init and unseal fsync, and CI machines are busy.
	cfg.Timeout = time.Minute
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.ClearNamespace()
	if token == "" {
		c.ClearToken()
	} else {
		c.SetToken(token)
	}
	return c, nil
}

// Logs returns what the server process printed so far.
func (s *Server) Logs() string {
	if s.logBuf == nil {
		return ""
	}
	return s.logBuf.String()
}

func (s *Server) readVersion(t testing.TB) {
	t.Helper()
	c := s.rawClient(t, s.Token)
	st, err := c.Sys().SealStatus()
	if err != nil {
		t.Fatalf("vaulttest: seal-status at %s: %v", s.Addr, err)
	}
	s.Version = st.Version
	t.Logf("vaulttest: real Vault server %s (%s) at %s", s.Version, s.Source, s.Addr)
}

func (s *Server) waitHTTP(t testing.TB) {
	t.Helper()
	if err := s.tryWaitHTTP(30 * time.Second); err != nil {
		t.Fatalf("vaulttest: %v\n%s", err, s.logBuf.String())
	}
}

// tryWaitHTTP waits until the server answers sys/health (any status) or the
// process exits.
func (s *Server) tryWaitHTTP(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(s.Addr + "/v1/sys/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("vault exited before answering on %s", s.Addr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not answer on %s within %s: %v", s.Addr, limit, err)
		}
	}
}

func (s *Server) waitKV(t testing.TB) {
	t.Helper()
	c := s.rawClient(t, s.Token)
	waitFor(t, time.Minute, func() error {
		_, err := c.KVv2("secret").Put(context.Background(), "vaulttest/ready", map[string]any{"ok": true})
		return err
	})
}

func waitFor(t testing.TB, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vaulttest: gave up after %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// StartContainer returns a real Vault in a Docker container started through
// testcontainers-go's Vault module, stopped and removed at the end of the
// test: the image in $ECAROTATOR_VAULT_IMAGE, else LocalImage (`make
// images`), else OfficialImage. Without a Docker engine the test is skipped,
// or fails when ECAROTATOR_REQUIRE_DOCKER=1.
func StartContainer(t testing.TB) *Server {
	t.Helper()
	s, err := startContainer(t)
	if err != nil {
		msg := "testcontainers Vault: " + err.Error()
		if os.Getenv(RequireDockerEnv) == "1" {
			t.Fatalf("vaulttest: %s (%s=1 requires Docker)", msg, RequireDockerEnv)
		}
		t.Skipf("vaulttest: %s", msg)
	}
	return s
}

// errNoDocker reports that no Docker engine socket was found.
var errNoDocker = errors.New("no Docker engine (DOCKER_HOST unset, no /var/run/docker.sock)")

func startContainer(t testing.TB) (*Server, error) {
	t.Helper()
	if os.Getenv("DOCKER_HOST") == "" && !fileExists("/var/run/docker.sock") {
		return nil, errNoDocker
	}
	// Ryuk (the reaper) is a second image to pull; t.Cleanup removes the
	// container instead. An explicit setting is respected. Set before
	// testcontainers-go reads its configuration (once per process).
	if _, ok := os.LookupEnv(ryukDisabledEnv); !ok {
		_ = os.Setenv(ryukDisabledEnv, "true")
	}
	// With a local engine socket the published ports are on this host's
	// loopback. Left alone, testcontainers-go takes a /.dockerenv file
	// (present on some sandboxed hosts) to mean "inside a container" and
	// dials a gateway address instead, which is not ours to dial.
	if _, ok := os.LookupEnv(hostOverrideEnv); !ok && localDockerSocket() {
		_ = os.Setenv(hostOverrideEnv, "127.0.0.1")
	}
	images := []string{LocalImage, OfficialImage}
	if img := os.Getenv(ImageEnv); img != "" {
		images = []string{img}
	}
	var errs []error
	for _, img := range images {
		s, err := runContainer(t, img)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", img, err))
	}
	return nil, errors.Join(errs...)
}

func runContainer(t testing.TB, img string) (*Server, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	token := "root-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := tcvault.Run(ctx, img, tcvault.WithToken(token))
	if c != nil {
		// Registered even when Run failed: a container that started but
		// never became ready is removed too.
		t.Cleanup(func() {
			if err := c.Terminate(context.Background()); err != nil {
				t.Logf("vaulttest: terminate container: %v", err)
			}
		})
	}
	if err != nil {
		return nil, err
	}
	addr, err := c.HttpHostAddress(ctx)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	s := &Server{Addr: addr, Token: token, Source: "testcontainers", Image: img, ContainerID: c.GetContainerID()}
	t.Logf("vaulttest: container %.12s from image %s at %s", s.ContainerID, img, addr)
	s.waitKV(t)
	s.readVersion(t)
	return s, nil
}

func noVault(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("vaulttest: %s (%s=1 requires a real Vault)", msg, RequireEnv)
	}
	t.Skipf("vaulttest: %s", msg)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("vaulttest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// syncBuffer collects process output safely from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the server's output lines containing substr (debug aid).
func (s *Server) Lines(substr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.Logs()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}
