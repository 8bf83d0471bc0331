package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ecarotator/ecarotator"

// importRules are the layering rules of issue 14 (docs/design.md
// "Layout"), checked on the non-test imports of every package of the
// module, with and without the integration tag.
var importRules = []struct {
	imported string
	// allowed are the importers permitted (a trailing "/" allows a tree).
	allowed []string
	why     string
}{
	{"github.com/hashicorp/vault/api", []string{module + "/vault", module + "/internal/vaulttest"},
		"only vault/ speaks to Vault (the test helper may too)"},
	{module + "/internal/config", []string{module + "/cmd/", module + "/internal/wire", module + "/internal/config"},
		"only cmd/, the wiring and internal/config read the config (the daemon takes wire.DaemonSettings)"},
	{module + "/internal/server", []string{module + "/cmd/", module + "/internal/daemon", module + "/internal/server",
		// The auditor console is a part of the HTTP layer that the server
		// mounts under /ui/: it shares the server's status types and read check.
		module + "/internal/console"},
		"the HTTP layer is known only to the daemon, the CLI and the console it mounts (not to internal/mfa)"},
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T, tags string) []listedPackage {
	t.Helper()
	args := []string{"list", "-json=ImportPath,Imports"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, module+"/...")
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func allowedImporter(pkg string, allowed []string) bool {
	return slices.ContainsFunc(allowed, func(a string) bool {
		if strings.HasSuffix(a, "/") {
			return strings.HasPrefix(pkg, a)
		}
		return pkg == a
	})
}

// TestImportRules keeps the layering of issue 14 from coming back: no
// package outside vault/ imports Vault's SDK, the config stays with cmd/
// and the wiring, and the HTTP layer stays out of the adapters. It lists
// the module's packages with `go list` (non-test imports; test files may
// use the SDK to set up a real Vault).
func TestImportRules(t *testing.T) {
	for _, tags := range []string{"", "integration"} {
		for _, p := range listPackages(t, tags) {
			for _, r := range importRules {
				if slices.Contains(p.Imports, r.imported) && !allowedImporter(p.ImportPath, r.allowed) {
					t.Errorf("%s imports %s (tags %q): %s", p.ImportPath, r.imported, tags, r.why)
				}
			}
		}
	}
}

func TestImportRulesCatchAViolation(t *testing.T) {
	r := importRules[0]
	if allowedImporter(module+"/audit", r.allowed) || !allowedImporter(module+"/vault", r.allowed) {
		t.Fatal("the vault/api rule does not tell audit/ from vault/")
	}
	if !allowedImporter(module+"/cmd/ecarotator", importRules[1].allowed) {
		t.Fatal("the config rule refuses cmd/ecarotator")
	}
}
