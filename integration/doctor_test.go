//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

// doctorOutput is `ecarotator doctor --json`.
type doctorOutput struct {
	Ready  bool `json:"ready"`
	Checks []struct {
		DevHub      string `json:"devhub"`
		App         string `json:"app"`
		Check       string `json:"check"`
		Status      string `json:"status"`
		Detail      string `json:"detail"`
		Remediation string `json:"remediation"`
	} `json:"checks"`
	Observed map[string]string `json:"observed"`
}

// editConfig replaces old with repl in the env's ecarotator config.
func (e *env) editConfig(old, repl string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		e.t.Fatalf("config lacks %q", old)
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), old, repl, 1)), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// noMutatingCall asserts sfsim saw no POST/PATCH/DELETE other than token
// requests and SOAP calls, that both settings and every consumer are as
// they were, and that no metadata was deployed.
func (e *env) noMutatingCall(access, mdAccess bool, before map[string]sfsim.ConsumerState) {
	e.t.Helper()
	for _, r := range e.sim.Requests() {
		if r.Method == "GET" || r.Route == sfsim.RouteToken || r.Route == sfsim.RouteSOAP {
			continue
		}
		e.t.Errorf("doctor made a mutating call: %s %s (%s)", r.Method, r.Path, r.Route)
	}
	if got := e.sim.SecretAccess("devhub"); got != access {
		e.t.Errorf("secret access changed to %v", got)
	}
	// SOAP carries reads and writes alike: the Metadata setting and the
	// deploys show that none of it wrote.
	if got := e.sim.MetadataSecretAccess("devhub"); got != mdAccess {
		e.t.Errorf("metadata secret access changed to %v", got)
	}
	if d := e.sim.MetadataDeploys(); len(d) != 0 {
		e.t.Errorf("doctor deployed metadata: %+v", d)
	}
	for app, st := range before {
		now := e.consumer(app)
		if now.Key != st.Key || (now.Staged == nil) != (st.Staged == nil) {
			e.t.Errorf("%s changed: %+v -> %+v", app, st, now)
		}
	}
}

func TestDoctor(t *testing.T) {
	tests := []struct {
		name      string
		simSetup  func(*sfsim.Config)
		edit      [2]string // config edit
		wantReady bool
		failApp   string      // app of the failing row ("" = a Dev Hub row)
		failCheck string      // prefix of the failing row's check
		fixHas    string      // remediation must contain this
		okHas     [][2]string // ready: billing rows (check, detail substring) that must pass
	}{
		{name: "the demo landscape is ready", wantReady: true},
		{name: "setting off with reads gated fails the credential reads row (always_on)",
			edit:    [2]string{"    auth:\n", "    secret_access: always_on\n    auth:\n"},
			failApp: "billing", failCheck: "credential reads", fixHas: "turn the setting on"},
		{name: "a packaged ECA under strategy auto is ready with the metadata strategy",
			simSetup: packagedBilling, wantReady: true,
			okHas: [][2]string{{"eca", "metadata strategy (strategy auto: distribution state is Packaged)"}, {"metadata secret access", "toggle mode opens it"},
				{"metadata permission", "View External Client Apps Consumer Secrets in Metadata"}, {"metadata retrieve", "toggle mode opens it"}}},
		{name: "a packaged ECA with the Metadata setting on: the retrieve carries the secret",
			simSetup: func(c *sfsim.Config) { packagedBilling(c); c.Orgs[0].MetadataSecretAccess = true }, wantReady: true,
			okHas: [][2]string{{"metadata secret access", "= true"}, {"metadata retrieve", "carries the consumer secret"}}},
		{name: "strategy staged on a packaged ECA fails its eca row and names strategy metadata",
			simSetup: packagedBilling, edit: [2]string{"    eca: Billing\n", "    eca: Billing\n    strategy: staged\n"},
			failApp: "billing", failCheck: "eca", fixHas: "strategy: metadata"},
		{name: "a packaged ECA read by retrieve without the Metadata secrets permission fails the metadata permission row",
			simSetup: func(c *sfsim.Config) {
				packagedBilling(c)
				c.Orgs[0].Users[0].Permissions = []string{sfsim.PermAPIEnabled, sfsim.PermExternalClientAppDeveloper, sfsim.PermViewClientSecret, sfsim.PermModifyMetadata}
			},
			edit:    [2]string{"    eca: Billing\n", "    eca: Billing\n    secret_read: metadata\n"},
			failApp: "billing", failCheck: "metadata permission", fixHas: "View External Client Apps Consumer Secrets in Metadata"},
		{name: "a verify org without the client-credentials flow fails that verify row",
			simSetup: func(c *sfsim.Config) { delete(c.Orgs[1].RunAs, "Billing") },
			failApp:  "billing", failCheck: "verify ", fixHas: "client-credentials flow"},
		{name: "an org serving only API 64.0 fails the versions row",
			simSetup:  func(c *sfsim.Config) { c.Behavior.MaxAPIVersion = 64 },
			failCheck: "api versions", fixHas: "65.0"},
		{name: "a user lacking View Client Secret fails the permissions row",
			simSetup: func(c *sfsim.Config) {
				c.Orgs[0].Users[0].Permissions = []string{sfsim.PermAPIEnabled, sfsim.PermExternalClientAppDeveloper, sfsim.PermModifyMetadata}
			},
			failCheck: "permissions", fixHas: "View Client Secret"},
		{name: "a wrong audience fails the login row",
			edit:      [2]string{"audience: auto", "audience: https://wrong.example.com"},
			failCheck: "login", fixHas: "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{simSetup: tt.simSetup})
			if tt.edit[0] != "" {
				e.editConfig(tt.edit[0], tt.edit[1])
			}
			before := map[string]sfsim.ConsumerState{}
			for app := range initial {
				before[app] = e.consumer(app)
			}
			access := e.sim.SecretAccess("devhub")
			mdAccess := e.sim.MetadataSecretAccess("devhub")
			e.sim.ResetRequests()
			code, _, stdout, stderr := e.cli(nil, "doctor", "--json")
			e.noMutatingCall(access, mdAccess, before)
			var out doctorOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("doctor --json: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			if tt.wantReady {
				if code != 0 || !out.Ready {
					t.Fatalf("exit %d ready %v, want 0/ready; checks %+v", code, out.Ready, out.Checks)
				}
				if out.Observed["devhub/Billing: reads gated by the setting"] != "yes" {
					t.Errorf("observed %v, want reads gated: yes", out.Observed)
				}
				for _, want := range tt.okHas {
					ok := false
					for _, c := range out.Checks {
						ok = ok || (c.App == "billing" && c.Check == want[0] && c.Status == "ok" && strings.Contains(c.Detail, want[1]))
					}
					if !ok {
						t.Errorf("no passing billing %q row with %q in %+v", want[0], want[1], out.Checks)
					}
				}
				code, _, text, _ := e.cli(nil, "doctor")
				if code != 0 || !strings.Contains(text, "\nready\n") || !strings.Contains(text, "Observed Salesforce behaviours") {
					t.Errorf("doctor (table) exit %d:\n%s", code, text)
				}
				t.Logf("doctor output:\n%s", text)
				e.noMutatingCall(access, mdAccess, before)
				return
			}
			if code != 4 || out.Ready {
				t.Fatalf("exit %d ready %v, want 4/not ready", code, out.Ready)
			}
			found := false
			for _, c := range out.Checks {
				if c.Status == "FAIL" && c.App == tt.failApp && strings.HasPrefix(c.Check, tt.failCheck) {
					found = true
					if !strings.Contains(c.Remediation, tt.fixHas) {
						t.Errorf("row %s %s: remediation %q lacks %q", c.App, c.Check, c.Remediation, tt.fixHas)
					}
				}
			}
			if !found {
				t.Errorf("no failing %q row for app %q in %+v", tt.failCheck, tt.failApp, out.Checks)
			}
			for _, secret := range e.secretsSeen() {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("doctor output contains a consumer secret")
				}
			}
		})
	}
}

// packagedBilling makes Billing a packaged ECA (the demo's rotator user
// holds the Metadata secrets permission; the settings stay off: toggle).
func packagedBilling(c *sfsim.Config) {
	c.Orgs[0].ECAs[1].DistributionState = sfsim.DistributionPackaged
}
