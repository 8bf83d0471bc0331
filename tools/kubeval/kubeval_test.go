package kubeval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manifests is the folder under test, relative to this module.
const manifests = "../../deploy/kubernetes"

// documented lists the objects README.md tells the operator to create.
var documented = External{Secrets: []string{"ecarotator-tls"}, ConfigMaps: []string{"vault-ca"}}

func TestEveryManifestDecodesStrictlyAndPassesTheChecks(t *testing.T) {
	s, err := Load(manifests)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	for _, e := range s.Check(documented) {
		t.Error(e)
	}
	t.Logf("validated %d files: %d Namespace, %d ServiceAccount, %d ConfigMap, %d Deployment, %d Service, %d PodDisruptionBudget, %d NetworkPolicy",
		len(s.Kustomization.Resources), len(s.Namespaces), len(s.ServiceAccount), len(s.ConfigMaps), len(s.Deployments), len(s.Services), len(s.PDBs), len(s.NetworkPolicy))
}

func TestTheREADMEDocumentsEveryExternalObject(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(manifests, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(append([]string{}, documented.Secrets...), documented.ConfigMaps...) {
		if !strings.Contains(string(b), name) {
			t.Errorf("README.md does not say how to create %s", name)
		}
	}
}

// TestTheValidatorCatchesBrokenManifests copies the manifests, breaks one
// thing at a time, and expects the named problem: a validator that passes
// everything proves nothing.
func TestTheValidatorCatchesBrokenManifests(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new, want string
		loadErr                    bool
	}{
		{"an unknown field is a decode error", "deployment.yaml", "  revisionHistoryLimit: 3", "  revisionHistoryLimt: 3", "unknown field", true},
		{"a duplicate field is a decode error", "service.yaml", "  type: ClusterIP", "  type: ClusterIP\n  type: NodePort", "already set", true},
		{"a bad quantity is a decode error", "deployment.yaml", "memory: 64Mi", "memory: 64 megs", "quantities must match", true},
		{"a wrong apiVersion is an error", "poddisruptionbudget.yaml", "policy/v1", "policy/v1beta1", "not a kind", true},
		{"one replica is refused", "deployment.yaml", "replicas: 2", "replicas: 1", "replicas 1, want 2", false},
		{"a writable root file system is refused", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem", false},
		{"root is refused", "deployment.yaml", "runAsUser: 65532", "runAsUser: 0", "runAsNonRoot", false},
		{"a probe on the wrong path is refused", "deployment.yaml", "path: /readyz", "path: /ready", "want /readyz", false},
		{"a Service that selects nothing is refused", "service.yaml", "app.kubernetes.io/component: daemon", "app.kubernetes.io/component: web", "does not select", false},
		{"a PDB that blocks every drain is refused", "poddisruptionbudget.yaml", "minAvailable: 1", "minAvailable: 2", "fewer than the 2 replicas", false},
		{"a NetworkPolicy without DNS is refused", "networkpolicy.yaml", "- port: 53\n          protocol: UDP\n        - port: 53", "- port: 54\n          protocol: UDP\n        - port: 54", "DNS", false},
		{"a memory request below the measured RSS is refused", "deployment.yaml", "memory: 64Mi", "memory: 16Mi", "below the measured RSS", false},
		{"an audit file on the read-only root is refused", "configmap.yaml", "file: /var/lib/ecarotator/audit.log", "file: /audit.log", "audit.file", false},
		{"an unlisted file is an error", "extra.yaml", "", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "not listed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyManifests(t)
			path := filepath.Join(dir, tc.file)
			b, _ := os.ReadFile(path)
			if tc.old != "" && !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s does not contain %q: update the test", tc.file, tc.old)
			}
			out := strings.Replace(string(b), tc.old, tc.new, 1)
			if tc.old == "" {
				out = tc.new
			}
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Load(dir)
			var got []string
			if err != nil {
				got = append(got, err.Error())
			}
			if !tc.loadErr && err == nil {
				for _, e := range s.Check(documented) {
					got = append(got, e.Error())
				}
			}
			if !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Errorf("problems %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func copyManifests(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(manifests, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
