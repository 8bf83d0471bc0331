//go:build integration

package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
)

// dockerTools is a Docker engine that answers, with the compose tool found
// beside it.
type dockerTools struct {
	server  string   // engine version
	compose []string // "docker compose" or "docker-compose"
}

// noDocker skips the test, or fails it when ECAROTATOR_REQUIRE_DOCKER=1
// (CI), which must never count a Docker test as passed without running it.
func noDocker(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(vaulttest.RequireDockerEnv) == "1" {
		t.Fatalf(format+" ("+vaulttest.RequireDockerEnv+"=1 requires Docker)", args...)
	}
	t.Skipf(format, args...)
}

// requireDocker finds a Docker engine and a compose tool: the compose v2
// plugin (`docker compose`) or the standalone `docker-compose`.
func requireDocker(t *testing.T) *dockerTools {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		noDocker(t, "no docker CLI")
	}
	out, err := runCmd(t, 30*time.Second, nil, "docker", "version", "--format", "{{.Server.Version}}")
	if err != nil {
		noDocker(t, "no Docker engine answers: %v\n%s", err, out)
	}
	d := &dockerTools{server: strings.TrimSpace(out)}
	if _, err := runCmd(t, 30*time.Second, nil, "docker", "compose", "version"); err == nil {
		d.compose = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		d.compose = []string{"docker-compose"}
	} else {
		noDocker(t, "Docker engine %s but no compose tool (docker compose plugin or docker-compose)", d.server)
	}
	return d
}

// requireImages asserts the images exist locally (`make images`).
func (d *dockerTools) requireImages(t *testing.T, images ...string) {
	t.Helper()
	for _, img := range images {
		if out, err := runCmd(t, 30*time.Second, nil, "docker", "image", "inspect", "--format", "{{.Id}}", img); err != nil {
			noDocker(t, "image %s is missing: run `make images` first (%v: %s)", img, err, strings.TrimSpace(out))
		}
	}
}

// runCmd runs a command with a deadline and extra environment; it returns
// stdout and stderr together.
func runCmd(t *testing.T, limit time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// freeTCPPort returns a loopback port free at the time of the call, for a
// container's published port.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
