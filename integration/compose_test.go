//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/ecarotator/ecarotator/internal/vaulttest"
)

// loadCompose parses the repository's docker-compose.yml the way `docker
// compose` does (compose-go, the library the Docker CLI uses), without
// Docker, with every variable at its default. TestDockerComposeStack runs
// the stack for real where an engine is available.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithName("ecarotator"),
		// Only the file decides: no .env, no OS environment.
		cli.WithEnv(nil),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// published returns "host_ip:published->target" for every published port.
func composePorts(s types.ServiceConfig) []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p.HostIP+":"+p.Published+"->"+strconv.FormatUint(uint64(p.Target), 10))
	}
	return out
}

func composeEnv(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

func TestComposeStack(t *testing.T) {
	p := loadCompose(t)

	t.Run("the stack has vault, vault-init, sfsim and ecarotator", func(t *testing.T) {
		for _, name := range []string{"vault", "vault-init", "sfsim", "ecarotator"} {
			composeService(t, p, name)
		}
	})

	t.Run("vault runs the image make images builds, in dev mode on 8200", func(t *testing.T) {
		v := composeService(t, p, "vault")
		if v.Image != vaulttest.LocalImage {
			t.Errorf("image %q, want %s by default", v.Image, vaulttest.LocalImage)
		}
		if !slices.Contains(v.Command, "-dev") || !slices.Contains(v.Command, "-dev-listen-address=0.0.0.0:8200") {
			t.Errorf("command %v is not dev mode on 0.0.0.0:8200", v.Command)
		}
		got := composePorts(v)
		for _, want := range []string{"127.0.0.1:8200->8200", "127.0.0.1:9464->9464", "127.0.0.1:18440->18440", "127.0.0.1:18441->18441"} {
			if !slices.Contains(got, want) {
				t.Errorf("ports %v lack %s", got, want)
			}
		}
		if v.HealthCheck == nil {
			t.Error("no healthcheck: dependants cannot wait for it")
		}
	})

	t.Run("every other service shares the vault service's network namespace", func(t *testing.T) {
		// configs/compose.yaml names Vault and sfsim at 127.0.0.1, where
		// plain http is accepted.
		for _, name := range []string{"vault-init", "sfsim", "ecarotator"} {
			if s := composeService(t, p, name); s.NetworkMode != "service:vault" {
				t.Errorf("%s: network_mode %q, want service:vault", name, s.NetworkMode)
			}
		}
	})

	t.Run("every published port is on the host's loopback", func(t *testing.T) {
		for _, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q", s.Name, port.Published, port.HostIP)
				}
			}
		}
	})

	t.Run("sfsim runs the local image seeded from the demo landscape", func(t *testing.T) {
		s := composeService(t, p, "sfsim")
		if s.Image != "localhost/ecarotator-sfsim:dev" || s.Build != nil {
			t.Errorf("image %q build %+v, want localhost/ecarotator-sfsim:dev from make images", s.Image, s.Build)
		}
		if got := strings.Join(s.Command, " "); !strings.HasPrefix(got, "-c /etc/sfsim/demo.yaml -host 0.0.0.0") {
			t.Errorf("command %q", got)
		}
		if !composeMounts(s, "salesforce/sfsim/testdata/demo.yaml", "/etc/sfsim/demo.yaml") {
			t.Errorf("volumes %+v do not mount the seed file", s.Volumes)
		}
	})

	t.Run("ecarotator runs the daemon with configs/compose.yaml", func(t *testing.T) {
		e := composeService(t, p, "ecarotator")
		if e.Image != "localhost/ecarotator:dev" {
			t.Errorf("image %q", e.Image)
		}
		if got := strings.Join(e.Command, " "); got != "run -c /etc/ecarotator/compose.yaml" {
			t.Errorf("command %q", got)
		}
		if composeEnv(e, "VAULT_TOKEN") == "" {
			t.Error("no VAULT_TOKEN")
		}
		if !composeMounts(e, "configs/compose.yaml", "/etc/ecarotator/compose.yaml") {
			t.Errorf("volumes %+v do not mount configs/compose.yaml", e.Volumes)
		}
		for dep, cond := range map[string]string{
			"vault":      types.ServiceConditionHealthy,
			"vault-init": types.ServiceConditionCompletedSuccessfully,
			"sfsim":      types.ServiceConditionHealthy,
		} {
			if d, ok := e.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("depends_on %s = %+v, want condition %s", dep, d, cond)
			}
		}
		var state bool
		for _, v := range e.Volumes {
			state = state || (v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/ecarotator")
		}
		if !state {
			t.Errorf("volumes %+v: no named volume on /var/lib/ecarotator (the audit trail)", e.Volumes)
		}
	})

	t.Run("vault-init seeds the Dev Hub key with the Vault image's shell", func(t *testing.T) {
		i := composeService(t, p, "vault-init")
		if i.Image != composeService(t, p, "vault").Image {
			t.Errorf("image %q is not the vault service's", i.Image)
		}
		if got := composeEnv(i, "VAULT_ADDR"); got != "http://127.0.0.1:8200" {
			t.Errorf("VAULT_ADDR %q", got)
		}
		if got := strings.Join(i.Entrypoint, " "); got != "/bin/sh -ec" {
			t.Errorf("entrypoint %q", got)
		}
		if !composeMounts(i, "salesforce/sfsim/testdata/demo-rotator-key.pem", "/seed/demo-rotator-key.pem") {
			t.Errorf("volumes %+v do not mount the demo key", i.Volumes)
		}
	})

	t.Run("the referenced files are in the repository", func(t *testing.T) {
		// configs/compose.yaml and sfsim's seed are written by other parts
		// of the project; a rename must break this test, not the stack.
		for _, f := range []string{"salesforce/sfsim/testdata/demo.yaml", "salesforce/sfsim/testdata/demo-rotator-key.pem", "configs/compose.yaml", "scripts/images.sh"} {
			if _, err := os.Stat(filepath.Join(p.WorkingDir, f)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	})

	t.Run("make images builds every image the stack names", func(t *testing.T) {
		script, err := os.ReadFile(filepath.Join(p.WorkingDir, "scripts", "images.sh"))
		if err != nil {
			t.Fatal(err)
		}
		vaultVersion := strings.TrimPrefix(vaulttest.LocalImage, "localhost/ecarotator-vault:")
		for _, s := range p.Services {
			name := strings.Replace(s.Image, ":dev", ":$tag", 1)
			name = strings.Replace(name, ":"+vaultVersion, ":$vault_version", 1)
			if !strings.Contains(string(script), `"`+name+`"`) {
				t.Errorf("%s: image %s is not built by scripts/images.sh (looked for %q)", s.Name, s.Image, name)
			}
		}
	})
}

// mounts reports whether s bind-mounts the repository file rel at target.
func composeMounts(s types.ServiceConfig, rel, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, filepath.FromSlash(rel)) && v.Target == target {
			return true
		}
	}
	return false
}

// TestDockerfilesAreScratchNonRootAndFewLayers checks what `make images`
// promises of every image: FROM scratch (nothing to pull), no RUN (no shell
// at build time), a non-root user, and at most two file layers (the storage
// driver may be vfs, which copies each layer in full).
func TestDockerfilesAreScratchNonRootAndFewLayers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "docker", "*.Dockerfile"))
	if err != nil || len(files) != 3 {
		t.Fatalf("want 3 Dockerfiles under deploy/docker, got %v (%v)", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var froms, copies int
		var user string
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			switch strings.ToUpper(fields[0]) {
			case "FROM":
				froms++
				if len(fields) < 2 || fields[1] != "scratch" {
					t.Errorf("%s: %q: want FROM scratch", f, line)
				}
			case "COPY", "ADD":
				copies++
			case "RUN":
				t.Errorf("%s: %q: a scratch image has no shell to RUN", f, line)
			case "USER":
				user = fields[1]
			}
		}
		if froms != 1 || copies == 0 || copies > 2 {
			t.Errorf("%s: %d FROM, %d COPY: want one FROM scratch and one or two COPY layers", f, froms, copies)
		}
		if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
			t.Errorf("%s: USER %q, want a non-root uid", f, user)
		}
	}
}
