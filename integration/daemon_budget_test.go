//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/daemon"
)

// TestDaemonDefersAboveAPIBudget: once Sforce-Limit-Info shows the Dev Hub
// above its api_budget_threshold, due runs are deferred (counted in
// ecarotator_scheduler_deferrals_total) instead of calling Salesforce.
func TestDaemonDefersAboveAPIBudget(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A 1,000-call daily limit and a 1% threshold: the first rotation's
	// calls (about 20) put the org over budget.
	e.sim.SetAPILimit("devhub", 1000)
	cfg := e.writeDaemonConfig("budget", daemonConfig{Schedule: "@every 2s", Window: "1s", APIBudget: "0.01"})
	_, base := e.startDaemon(cfg, daemon.Options{})

	eventually(t, time.Minute, "a deferral", func() bool {
		_, body := httpDo(t, "GET", base+"/metrics", "", "")
		return strings.Contains(body, `ecarotator_scheduler_deferrals_total{org="devhub",reason="APIBudgetExceeded"}`)
	})
	count := func() int {
		n := 0
		for _, ts := range e.promotes() {
			n += len(ts)
		}
		return n
	}
	n := count()
	// Six more slots pass; nothing more is rotated while over budget.
	until := time.Now().Add(6 * time.Second)
	eventually(t, time.Minute, "six seconds", func() bool { return time.Now().After(until) })
	if m := count(); m != n {
		t.Errorf("%d promotes while over budget, want none", m-n)
	}
	if code, body := httpDo(t, "GET", base+"/api/v1/apps", e.getenv("VAULT_TOKEN"), ""); code != 200 || !strings.Contains(body, "APIBudgetExceeded") {
		t.Errorf("status does not show the deferral: %d %s", code, body)
	}
}
