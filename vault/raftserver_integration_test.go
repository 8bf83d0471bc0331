//go:build integration

package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
)

// raftServer is a real Vault whose data survives Stop/Restart. It exists
// because vaulttest.StartPersistent configures file storage, which the
// "minimal" build of the test binary does not contain ("Unknown storage
// type file"); integrated storage (raft) is in that build.
type raftServer struct {
	Addr, Token string
	bin, cfg    string
	unsealKey   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedWriter
}

func startRaft(t *testing.T) *raftServer {
	t.Helper()
	bin := vaulttest.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(vaulttest.RequireEnv) == "1" {
			t.Fatalf("no vault binary at %s", bin)
		}
		t.Skipf("no vault binary at %s (make vault)", bin)
	}
	port, cport := freeTCPPort(t), freeTCPPort(t)
	dir := t.TempDir()
	s := &raftServer{Addr: fmt.Sprintf("http://127.0.0.1:%d", port), bin: bin, cfg: filepath.Join(dir, "vault.hcl")}
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "node1"
}
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
disable_mlock = true
api_addr      = %q
cluster_addr  = "http://127.0.0.1:%d"
`, filepath.Join(dir, "raft"), port, s.Addr, cport)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.spawn(t)
	t.Cleanup(s.Stop)
	c := s.client(t, "")
	eventually(t, 30*time.Second, "vault answers", func() error {
		_, err := c.Sys().InitStatus()
		return err
	})
	c.SetClientTimeout(2 * time.Minute) // raft init writes its first snapshot
	init, err := c.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("vault init: %v\n%s", err, s.Logs())
	}
	s.Token, s.unsealKey = init.RootToken, init.Keys[0]
	s.unsealAndWait(t)
	root := s.client(t, s.Token)
	eventually(t, 60*time.Second, "raft leader mounts kv", func() error {
		return root.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	})
	s.waitKV(t)
	return s
}

func (s *raftServer) spawn(t *testing.T) {
	t.Helper()
	cmd := exec.Command(s.bin, "server", "-config="+s.cfg)
	cmd.Env = append(os.Environ(), "VAULT_ADDR=", "VAULT_TOKEN=", "SKIP_SETCAP=1")
	logs := &lockedWriter{w: &strings.Builder{}} // one writer, one mutex, for both streams
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.logs = cmd, done, logs
	s.mu.Unlock()
}

// Logs returns what the server printed.
func (s *raftServer) Logs() string {
	s.mu.Lock()
	logs := s.logs
	s.mu.Unlock()
	if logs == nil {
		return ""
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	return logs.w.String()
}

// Seal seals the server.
func (s *raftServer) Seal(t *testing.T) {
	t.Helper()
	if err := s.client(t, s.Token).Sys().Seal(); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the server process group by its id. Safe to call twice.
func (s *raftServer) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// Restart starts the stopped server on the same address and unseals it.
func (s *raftServer) Restart(t *testing.T) {
	t.Helper()
	s.Stop()
	s.spawn(t)
	s.unsealAndWait(t)
	s.waitKV(t)
}

func (s *raftServer) unsealAndWait(t *testing.T) {
	t.Helper()
	c := s.client(t, "")
	eventually(t, 30*time.Second, "vault unseal", func() error {
		st, err := c.Sys().Unseal(s.unsealKey)
		if err != nil {
			return err
		}
		if st.Sealed {
			return errors.New("still sealed")
		}
		return nil
	})
}

// waitKV waits until the raft node is leader and KV answers writes.
func (s *raftServer) waitKV(t *testing.T) {
	t.Helper()
	c := s.client(t, s.Token)
	eventually(t, 60*time.Second, "kv ready", func() error {
		_, err := c.KVv2("secret").Put(context.Background(), "ready", map[string]any{"ok": true})
		return err
	})
}

func (s *raftServer) client(t *testing.T, tok string) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 5 * time.Second
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	if tok != "" {
		c.SetToken(tok)
	}
	return c
}

// asServer adapts a raftServer to the vaulttest.Server fields the helpers use.
func (s *raftServer) asServer() *vaulttest.Server {
	return &vaulttest.Server{Addr: s.Addr, Token: s.Token, Source: "binary", Bin: s.bin}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
