package metrics

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/rotator"
	"github.com/prometheus/client_golang/prometheus"
	yaml "go.yaml.in/yaml/v3"
)

// exported returns every series name the registry exports once each
// collector has a child (histograms as _bucket, _sum and _count).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.ObserveRotation("a", rotator.OutcomeFailed, rotator.StepVerify, time.Second)
	m.ObserveDowntime("a", time.Second)
	m.SetLastSuccess("a", now)
	m.SetNextRotation("a", now)
	m.SetPreviousExpiry("a", now)
	m.SetOrphaned("a", true)
	m.SetAPIUsage("o", rotator.APIUsage{Used: 1, Limit: 2})
	m.VaultError(errors.New("x"))
	m.SalesforceError("o", errors.New("x"))
	m.WebhookDelivery("w", nil)
	m.Deferred("o", "r")
	m.SetMaxAge("a", time.Hour)
	m.SetSecretAccessOpen("o", true)
	m.AuditFailure()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[n+s] = true
			}
			continue
		}
		out[n] = true
	}
	return out
}

var metricName = regexp.MustCompile(`\becarotator_[a-z0-9_]+`)

// TestMonitoringExamplesUseExportedMetrics checks that the alerting rules
// and the Grafana dashboard of examples/monitoring name only metrics this
// package exports, and that the rules cover the five alerts operators
// asked for.
func TestMonitoringExamplesUseExportedMetrics(t *testing.T) {
	have := exported(t)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile("../../examples/monitoring/ecarotator-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["rule "+r.Alert] = r.Expr
			alerts[r.Alert] = true
		}
	}
	for _, want := range []string{"EcarotatorAppPastMaxAge", "EcarotatorRotationFailed", "EcarotatorAppOrphaned", "EcarotatorSecretAccessLeftOpen", "EcarotatorAuditSinkFailing"} {
		if !alerts[want] {
			t.Errorf("rules lack alert %s", want)
		}
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err = os.ReadFile("../../examples/monitoring/ecarotator-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			exprs["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}

	used := map[string]bool{}
	for where, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%s: expression names no ecarotator metric: %s", where, e)
		}
		for _, n := range names {
			used[n] = true
			if !have[n] {
				t.Errorf("%s uses %s, which ecarotator does not export", where, n)
			}
		}
	}
	var unused []string
	for n := range have {
		if !used[n] && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	t.Logf("exported but not on the dashboard or in a rule: %v", unused)
}
