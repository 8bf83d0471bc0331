//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ecarotator/ecarotator/audit"
	"github.com/ecarotator/ecarotator/internal/daemon"
	"github.com/ecarotator/ecarotator/rotator"
)

// browserPath finds Debian's chromium (or another Chrome). Without one
// the test skips, unless ECAROTATOR_REQUIRE_BROWSER=1 (CI sets it): then
// a missing browser fails instead of passing as skipped.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ECAROTATOR_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium found and ECAROTATOR_REQUIRE_BROWSER=1: install Debian's chromium package")
	}
	t.Skip("no chromium found (apt-get install chromium); set ECAROTATOR_REQUIRE_BROWSER=1 to fail instead")
	return ""
}

// artifactDir is where the screenshots go: $ECAROTATOR_ARTIFACTS/console
// (CI keeps it), else a fresh directory under the system temp dir that
// outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ECAROTATOR_ARTIFACTS")
	if dir != "" {
		dir = filepath.Join(dir, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "ecarotator-console-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("console screenshots: %s", dir)
	return dir
}

// TestConsoleInABrowser drives headless Chromium through the auditor
// console of a real daemon (real Vault, sfsim) after real rotations: a
// login with an auditor-policy token, the overview, a filtered audit
// trail, both exports, no secret anywhere in the DOM, logout, and a
// refused wrong token. Screenshots are kept as artefacts.
func TestConsoleInABrowser(t *testing.T) {
	chrome := browserPath(t)
	shots := artifactDir(t)
	e := newEnv(t, envOptions{})
	root := e.vault.Client(t)
	rootToken := e.getenv("VAULT_TOKEN")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", tail(e.logs.String(), 40))
		}
	})

	cfgPath := e.writeDaemonConfig("console", daemonConfig{Schedule: "@yearly", Overlap: "{policy: after, after: 720h}"})
	d, base := e.startDaemon(cfgPath, daemon.Options{})
	eventually(t, 15*time.Second, "readyz", func() bool {
		code, _ := httpDo(t, http.MethodGet, base+"/readyz", "", "")
		return code == http.StatusOK
	})

	// Three real rotations, one per app, through the operator API.
	rt := d.Runtime()
	for _, app := range []string{"billing", "support", "analytics"} {
		if code, body := httpDo(t, http.MethodPost, base+"/api/v1/apps/"+app+"/rotate", rootToken, `{"reason":"console test"}`); code != http.StatusAccepted {
			t.Fatalf("rotate %s: %d %s", app, code, body)
		}
		// Done means audited (after the secret-access setting is restored),
		// so the next app's rotation does not meet this one's lock.
		eventually(t, 60*time.Second, app+" rotated", func() bool {
			n := 0
			_ = audit.Scan(t.Context(), rt.Cfg.Audit.File, audit.Filter{App: app, Events: []rotator.EventType{rotator.EventRotationSucceeded}},
				func(*audit.Record) error { n++; return nil }, nil)
			return n == 1
		})
	}
	var secrets []string
	for _, app := range []string{"billing", "support", "analytics"} {
		st, _ := e.stored(rt, app)
		secrets = append(secrets, st.Current.Secret.Reveal(), st.Previous.Secret.Reveal())
	}
	secrets = append(secrets, e.secretsSeen()...)
	// An auditor's token: the shipped auditor policy plus Vault's default
	// policy, which every token gets unless told otherwise (it holds
	// sys/capabilities-self and token lookup-self, which the checks use).
	policyToken(t, root, "auditor") // writes policy it-auditor
	tok, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"it-auditor"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	auditor := tok.Auth.ClientToken
	secrets = append(secrets, auditor, rootToken)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	dom := map[string]string{} // page → its HTML as the browser holds it
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		dom[name] = get("dom of "+name, chromedp.OuterHTML(chromedp.CSS("html")))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A wrong token is refused.
	do("wrong token",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "hvs.not-a-real-token"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if msg := get("login error", chromedp.Text(chromedp.ID("login-error"))); !strings.Contains(msg, "Login failed") {
		t.Errorf("wrong token: message %q, want a login failure", msg)
	}
	shot("01-login-refused")

	// The auditor policy is enough to log in and see every app.
	do("login",
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), auditor),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("apps")),
	)
	overview := get("overview", chromedp.Text(chromedp.ID("apps")))
	shot("02-overview")
	for _, want := range []string{"billing", "support", "analytics", "ok", "rotation.succeeded", "auto"} {
		if !strings.Contains(overview, want) {
			t.Errorf("overview lacks %q:\n%s", want, overview)
		}
	}

	// One app's history with its SVG timeline.
	do("app history",
		chromedp.Navigate(base+"/ui/apps/billing"),
		chromedp.WaitVisible(chromedp.ID("timeline")),
		chromedp.WaitVisible(chromedp.ID("versions")),
	)
	shot("03-app-billing")

	// The audit trail, filtered with the form (app and event), verified.
	do("filtered audit trail",
		chromedp.Navigate(base+"/ui/audit"),
		chromedp.WaitVisible(chromedp.ID("filters")),
		chromedp.SetValue(chromedp.ID("f-app"), "billing"),
		chromedp.SetValue(chromedp.ID("f-event"), "rotation.succeeded"),
		chromedp.SetValue(chromedp.ID("f-actor"), "operator"),
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitVisible(chromedp.CSS(`#count[data-filtered="1"]`)),
	)
	trail := get("trail", chromedp.Text(chromedp.ID("trail")))
	verification := get("verification", chromedp.Text(chromedp.ID("verification")))
	shot("04-audit-filtered")
	if !strings.Contains(trail, "rotation.succeeded") || strings.Contains(trail, "support") || strings.Contains(trail, "analytics") || strings.Contains(trail, "step.completed") {
		t.Errorf("filtered trail holds other records:\n%s", trail)
	}
	if !strings.Contains(verification, "verified") || !strings.Contains(verification, "MAC checked") || !strings.Contains(verification, "anchored head reached") {
		t.Errorf("verification box: %s", verification)
	}

	// Both exports, fetched by the page itself with its session cookie.
	fetch := func(id string) string {
		t.Helper()
		return get("export "+id, chromedp.Evaluate[string](`fetch(document.getElementById("`+id+`").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	}
	csv := fetch("export-csv")
	if !strings.HasPrefix(csv, "seq,time,event,app") || strings.Count(csv, "rotation.succeeded") != 1 || strings.Contains(csv, "support") {
		t.Errorf("CSV export of the filter:\n%s", csv)
	}
	jsonExport := fetch("export-json")
	var records []map[string]any
	if err := json.Unmarshal([]byte(jsonExport), &records); err != nil || len(records) != 1 || records[0]["app"] != "billing" {
		t.Errorf("JSON export of the filter: %v %v", records, err)
	}

	// Pending approvals (none) and the unfiltered trail, for the leak check.
	do("approvals", chromedp.Navigate(base+"/ui/approvals"), chromedp.WaitVisible(chromedp.ID("approvals")))
	shot("05-approvals")
	do("full trail", chromedp.Navigate(base+"/ui/audit"), chromedp.WaitVisible(chromedp.ID("trail")))
	shot("06-audit-all")
	for _, app := range []string{"support", "analytics"} {
		do("app "+app, chromedp.Navigate(base+"/ui/apps/"+app), chromedp.WaitVisible(chromedp.ID("versions")))
		shot("07-app-" + app)
	}

	// No secret, and no token, anywhere in any page's DOM or export.
	dom["export-csv"], dom["export-json"] = csv, jsonExport
	for page, html := range dom {
		for _, s := range secrets {
			if s != "" && strings.Contains(html, s) {
				t.Errorf("page %s holds a secret or token", page)
			}
		}
	}
	if cookie := get("cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(cookie, "ecarotator_session") {
		t.Errorf("session cookie visible to scripts: %q", cookie)
	}

	// Logout ends the session: the console asks for a token again.
	do("logout",
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
}
