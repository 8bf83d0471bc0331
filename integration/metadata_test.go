//go:build integration

package integration

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/wire"
	"github.com/ecarotator/ecarotator/rotator"
)

// The packaged ECA of the demo landscape (salesforce/sfsim/testdata/demo.yaml):
// installed in acme and globex, rotated through the Metadata API.
var (
	payrollInitial = rotator.Credentials{Key: "3MVG9DEMO.payroll.consumer.key.0000000000000000000000000000000000000000000006", Secret: rotator.NewSecret("9111111111111111111111111111111111111111111111111111111111111111")}
	payrollID      = "888DH0000000006AAA"
)

// newMDEnv is newEnv plus the packaged app "payroll" (strategy auto) in the
// config, its hand-made Vault path, and a short deploy timeout.
func newMDEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := newEnv(t, o)
	kv := e.vault.Client(t).KVv2("secret")
	if _, err := kv.Put(t.Context(), "salesforce/payroll", map[string]any{
		"consumer_key": payrollInitial.Key, "consumer_secret": payrollInitial.Secret.Reveal(), "token_url": e.sim.TokenURL("devhub"),
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	app := "apps:\n  - name: payroll\n    devhub: devhub\n    eca: Payroll\n    deploy_timeout: 5s\n" +
		"    verify: {token_urls: [" + e.sim.TokenURL("devhub") + ", " + e.sim.TokenURL("acme") + ", " + e.sim.TokenURL("globex") + "], timeout: 20s}\n" +
		"    adopt: true\n"
	cfg := strings.Replace(string(b), "apps:\n", app, 1)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// rotatingDeploys counts the deploys Salesforce accepted that set a rotate flag.
func (e *env) rotatingDeploys() int {
	n := 0
	for _, d := range e.sim.MetadataDeploys() {
		if d.RotateKey || d.RotateSecret {
			n++
		}
	}
	return n
}

// checkPayroll asserts the end state of a metadata rotation of payroll:
// Vault holds exactly the pair Salesforce holds, it gets a token at the Dev
// Hub and both subscriber orgs, the old pair nowhere; both secret-access
// settings are back off; the rotate flags are false; exactly one rotating
// deploy; no journal; the audit chain verifies.
func (e *env) checkPayroll(t *testing.T) {
	t.Helper()
	rt := e.runtime(wire.RuntimeOptions{NoAudit: true})
	app, err := rt.App("payroll")
	if err != nil {
		t.Fatal(err)
	}
	sc, meta := e.stored(rt, "payroll")
	sf, err := e.sim.ConsumerState("devhub", "Payroll", payrollID)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Current.Secret.Reveal() == payrollInitial.Secret.Reveal() || sf.Secret == payrollInitial.Secret.Reveal() {
		t.Fatal("no rotation happened")
	}
	if sc.Current.Key != sf.Key || sc.Current.Secret.Reveal() != sf.Secret {
		t.Errorf("I2: Vault's pair (key %s) is not the one Salesforce holds (key %s)", sc.Current.Key, sf.Key)
	}
	if !meta.Managed {
		t.Error("path not marked managed")
	}
	e.mustAuth("new pair", sc.Current, app.VerifyURLs...)
	e.mustReject("old pair", payrollInitial, app.VerifyURLs...)
	if e.sim.SecretAccess("devhub") || e.sim.MetadataSecretAccess("devhub") {
		t.Errorf("I5: settings left on: rest %v metadata %v", e.sim.SecretAccess("devhub"), e.sim.MetadataSecretAccess("devhub"))
	}
	if k, s := e.sim.RotateFlags("devhub", "Payroll"); k || s {
		t.Errorf("rotate flags left true: key %v secret %v", k, s)
	}
	if n := e.rotatingDeploys(); n != 1 {
		t.Errorf("Salesforce accepted %d rotating deploys, want exactly 1", n)
	}
	if sc.Previous.Key != payrollInitial.Key || !sc.PreviousValidUntil.Equal(sc.RotatedAt) {
		t.Errorf("previous %s valid until %v (rotated %v): want the old pair, valid until the rotation time", sc.Previous.Key, sc.PreviousValidUntil, sc.RotatedAt)
	}
	if _, _, err := rt.Vault.Load(t.Context(), "payroll"); err == nil {
		t.Error("journal not cleared")
	}
	if code, _, out, errOut := e.cli(nil, "audit", "verify"); code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestMetadataPackagedAndLocalInOneConfig rotates the packaged ECA and a
// local one with the real binary, both on strategy auto.
func TestMetadataPackagedAndLocalInOneConfig(t *testing.T) {
	e := newMDEnv(t, envOptions{})
	code, _, out, errOut := e.cli(nil, "plan")
	if code != 0 && code != 4 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"payroll: strategy metadata — auto: distributionState is Packaged", "billing: strategy staged — auto: distributionState is Local"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	code, _, out, errOut = e.cli(nil, "rotate", "payroll", "--reason", "packaged")
	if code != 0 || !strings.Contains(out, "metadata") {
		t.Fatalf("rotate payroll: exit %d\n%s%s", code, out, errOut)
	}
	e.checkPayroll(t)
	if !strings.Contains(e.auditText(t), `"metadata.downtime"`) {
		t.Error("no downtime event in the audit trail")
	}
	code, _, out, errOut = e.cli(nil, "rotate", "billing", "--reason", "local")
	if code != 0 || !strings.Contains(out, "staged") {
		t.Fatalf("rotate billing: exit %d\n%s%s", code, out, errOut)
	}
	rt := e.runtime(wire.RuntimeOptions{NoAudit: true})
	sc, _ := e.stored(rt, "billing")
	if sc.Current.Key == initial["billing"].Key || e.stagePosts() != 1 {
		t.Errorf("billing was not rotated by the staged strategy (posts %d)", e.stagePosts())
	}
	for _, s := range []string{payrollInitial.Secret.Reveal(), sc.Current.Secret.Reveal()} {
		if strings.Contains(e.auditText(t), s) || strings.Contains(out+errOut, s) {
			t.Error("a secret leaked into the audit trail or the CLI output")
		}
	}
}

func (e *env) auditText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.dir + "/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdCrashPoints are the metadata strategy's new points: around the
// rotating deploy, during checkDeployStatus polling, between the deploy
// being done and the Vault write, and around the flag-clearing deploy and
// the Metadata setting.
var mdCrashPoints = []string{
	"before:open_md_secret_access",
	"before:deploy", "after:deploy",
	"poll:deploy",
	"step:rotate", "step:persist", "before:write_credentials", "after:write_credentials",
	"before:clear_flags", "before:close_md_secret_access",
}

// TestMetadataCrashAtEveryPoint kills a real `ecarotator rotate payroll`
// with SIGKILL at each point and runs it again: exactly one rotating
// deploy, the pair Salesforce holds ends up in Vault, both settings are
// restored, and the audit chain verifies.
func TestMetadataCrashAtEveryPoint(t *testing.T) {
	for _, point := range mdCrashPoints {
		t.Run(point, func(t *testing.T) {
			e := newMDEnv(t, envOptions{lockTTL: "2s"})
			code, killed, _, errOut := e.cli([]string{"ECAROTATOR_CRASH_AT=" + point}, "rotate", "payroll", "--reason", "crash test")
			if !killed {
				t.Fatalf("not killed at %s (exit %d): point never reached\n%s", point, code, errOut)
			}
			deadline := time.Now().Add(45 * time.Second)
			var out string
			for {
				code, _, out, errOut = e.cli(nil, "rotate", "payroll", "--reason", "after crash")
				if code == 0 || time.Now().After(deadline) || !strings.Contains(errOut, rotator.ErrLocked.Error()) {
					break
				}
				time.Sleep(200 * time.Millisecond) // polling the lease's expiry, bounded by deadline
			}
			if code != 0 {
				t.Fatalf("rerun after crash at %s: exit %d\nstdout:\n%s\nstderr:\n%s", point, code, out, errOut)
			}
			e.checkPayroll(t)
		})
	}
}
