package promrules

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const rulesFile = "../../examples/monitoring/ecarotator-rules.yml"

func TestExampleRulesParseWithThePrometheusRuleParser(t *testing.T) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule (%s); the file holds alerts only", g.Name, r.Record)
			}
			for _, k := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s: no severity label", r.Alert)
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alerts, want at least 5", n)
	}
}

// TestTheParserCatchesBrokenRules keeps the test honest: a broken PromQL
// expression and an unknown field are refused.
func TestTheParserCatchesBrokenRules(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"bad promql":    strings.Replace(string(b), "ecarotator_app_orphaned == 1", "ecarotator_app_orphaned == = 1", 1),
		"unknown field": strings.Replace(string(b), "        for: 5m\n", "        for: 5m\n        bogus: 1\n", 1),
	} {
		if broken == string(b) {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		p := filepath.Join(t.TempDir(), "rules.yml")
		if err := os.WriteFile(p, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errs := rulefmt.ParseFile(p, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler)); len(errs) == 0 {
			t.Errorf("%s: parsed without error", name)
		}
	}
}
