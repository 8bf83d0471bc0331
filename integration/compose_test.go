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
)

// loadCompose parses the repository's docker-compose.yml the way `docker
// compose` does (compose-go, the library the Docker CLI uses), without
// Docker: the stack itself cannot run here, but its shape can be checked.
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

	t.Run("the stack has vault, sfsim and ecarotator", func(t *testing.T) {
		for _, name := range []string{"vault", "vault-init", "sfsim", "ecarotator"} {
			composeService(t, p, name)
		}
	})

	t.Run("vault runs the pinned image in dev mode on 8200", func(t *testing.T) {
		v := composeService(t, p, "vault")
		if v.Image != "hashicorp/vault:1.19.5" {
			t.Errorf("image %q", v.Image)
		}
		if !slices.Contains(v.Command, "-dev") || !slices.Contains(v.Command, "-dev-listen-address=0.0.0.0:8200") {
			t.Errorf("command %v is not dev mode on 0.0.0.0:8200", v.Command)
		}
		if got := composePorts(v); !slices.Contains(got, "127.0.0.1:8200->8200") {
			t.Errorf("ports %v, want 8200 published on loopback", got)
		}
		if v.HealthCheck == nil {
			t.Error("no healthcheck: dependants cannot wait for it")
		}
	})

	t.Run("sfsim is built here and seeded from the demo landscape", func(t *testing.T) {
		s := composeService(t, p, "sfsim")
		if s.Build == nil || filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
			t.Fatalf("build %+v, want the repository's Dockerfile", s.Build)
		}
		if got := strings.Join(s.Command, " "); !strings.HasPrefix(got, "sfsim -c /etc/sfsim/demo.yaml") {
			t.Errorf("command %q", got)
		}
		if !composeMounts(s, "salesforce/sfsim/testdata/demo.yaml", "/etc/sfsim/demo.yaml") {
			t.Errorf("volumes %+v do not mount the seed file", s.Volumes)
		}
		got := composePorts(s)
		for _, want := range []string{"127.0.0.1:18440->18440", "127.0.0.1:18441->18441", "127.0.0.1:18442->18442", "127.0.0.1:18443->18443", "127.0.0.1:9464->9464"} {
			if !slices.Contains(got, want) {
				t.Errorf("ports %v lack %s", got, want)
			}
		}
	})

	t.Run("ecarotator runs the daemon against the vault service", func(t *testing.T) {
		e := composeService(t, p, "ecarotator")
		if got := strings.Join(e.Command, " "); got != "ecarotator run -c /etc/ecarotator/demo.yaml" {
			t.Errorf("command %q", got)
		}
		if got := composeEnv(e, "VAULT_ADDR"); got != "http://vault:8200" {
			t.Errorf("VAULT_ADDR %q, want http://vault:8200", got)
		}
		if composeEnv(e, "VAULT_TOKEN") == "" {
			t.Error("no VAULT_TOKEN")
		}
		if got := composeEnv(e, "ECAROTATOR_LISTEN"); got != "0.0.0.0:9464" {
			t.Errorf("ECAROTATOR_LISTEN %q: the API must listen beyond loopback to be published", got)
		}
		if !composeMounts(e, "configs/demo.yaml", "/etc/ecarotator/demo.yaml") {
			t.Errorf("volumes %+v do not mount configs/demo.yaml", e.Volumes)
		}
		// configs/demo.yaml names sfsim at 127.0.0.1: share its namespace.
		if e.NetworkMode != "service:sfsim" {
			t.Errorf("network_mode %q, want service:sfsim", e.NetworkMode)
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
		if e.Image != composeService(t, p, "sfsim").Image {
			t.Errorf("ecarotator image %q is not the one sfsim builds", e.Image)
		}
	})

	t.Run("vault-init seeds the Dev Hub key through the vault service", func(t *testing.T) {
		i := composeService(t, p, "vault-init")
		if got := composeEnv(i, "VAULT_ADDR"); got != "http://vault:8200" {
			t.Errorf("VAULT_ADDR %q", got)
		}
		if !composeMounts(i, "salesforce/sfsim/testdata/demo-rotator-key.pem", "/seed/demo-rotator-key.pem") {
			t.Errorf("volumes %+v do not mount the demo key", i.Volumes)
		}
	})

	t.Run("the referenced files are in the repository", func(t *testing.T) {
		// configs/demo.yaml and sfsim's seed are written by other parts of
		// the project; a rename must break this test, not the stack.
		for _, f := range []string{"Dockerfile", "salesforce/sfsim/testdata/demo.yaml", "salesforce/sfsim/testdata/demo-rotator-key.pem", "configs/demo.yaml"} {
			if _, err := os.Stat(filepath.Join(p.WorkingDir, f)); err != nil {
				t.Errorf("%s: %v", f, err)
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

func TestDockerfileBuildsBothBinariesStatically(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/ecarotator", "./cmd/sfsim", "AS build", "COPY --from=build", "USER 65532"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
