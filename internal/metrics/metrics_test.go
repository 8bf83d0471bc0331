package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecarotator/ecarotator/rotator"
)

// scrape serves reg through Handler on httptest and parses the answer.
func scrape(t *testing.T, reg *prometheus.Registry) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, raw)
	}
	return fams, string(raw)
}

// series renders a family's samples as "label=value,..." sorted strings.
func series(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		v := 0.0
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		}
		out = append(out, fmt.Sprintf("%s %g", strings.Join(ls, ","), v))
	}
	sort.Strings(out)
	return out
}

func TestScrapeNamesAndLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_790_000_000, 0)
	m.ObserveRotation("billing", rotator.OutcomeOK, rotator.StepFinish, 42*time.Second)
	m.ObserveRotation("billing", rotator.OutcomeFailed, rotator.StepVerify, 10*time.Minute)
	m.SetLastSuccess("billing", at)
	m.SetNextRotation("billing", at.Add(7*24*time.Hour))
	m.SetPreviousExpiry("billing", at.Add(30*24*time.Hour))
	m.SetNextRotation("gone", at)
	m.SetNextRotation("gone", time.Time{}) // nothing planned any more
	m.SetOrphaned("billing", false)
	m.SetOrphaned("crm", true)
	m.SetAPIUsage("devhub-prod", rotator.APIUsage{Used: 1200, Limit: 15000, At: at})
	m.VaultError(fmt.Errorf("vault: write secret/data/x: %w", rotator.ErrConflict))
	m.VaultError(nil)
	m.SalesforceError("devhub-prod", fmt.Errorf("salesforce: stage: %w", rotator.ErrRateLimited))
	m.WebhookDelivery("ops", nil)
	m.WebhookDelivery("ops", errors.New("boom"))
	m.Deferred("devhub-prod", "APIBudgetExceeded")

	fams, _ := scrape(t, reg)
	tests := []struct {
		name   string
		metric string
		want   []string
	}{
		{"rotations count by app, outcome and step", "ecarotator_rotations_total",
			[]string{"app=billing,outcome=failed,step=verify 1", "app=billing,outcome=ok,step=finish 1"}},
		{"durations are a histogram by app and outcome", "ecarotator_rotation_duration_seconds",
			[]string{"app=billing,outcome=failed 1", "app=billing,outcome=ok 1"}},
		{"last success is a timestamp per app", "ecarotator_last_success_timestamp_seconds", []string{"app=billing 1.79e+09"}},
		{"a zero next rotation removes the series", "ecarotator_next_rotation_timestamp_seconds", []string{"app=billing 1.7906048e+09"}},
		{"previous expiry is a timestamp per app", "ecarotator_previous_credential_expiry_timestamp_seconds", []string{"app=billing 1.792592e+09"}},
		{"orphaned is 0 or 1 per app", "ecarotator_app_orphaned", []string{"app=billing 0", "app=crm 1"}},
		{"API usage has used and limit per org", "ecarotator_salesforce_api_requests_used", []string{"org=devhub-prod 1200"}},
		{"the API limit is its own gauge", "ecarotator_salesforce_api_requests_limit", []string{"org=devhub-prod 15000"}},
		{"Vault errors count by class", "ecarotator_vault_errors_total", []string{"class=conflict 1"}},
		{"Salesforce errors count by org and class", "ecarotator_salesforce_errors_total", []string{"class=rate_limited,org=devhub-prod 1"}},
		{"webhook deliveries count by outcome", "ecarotator_webhook_deliveries_total", []string{"outcome=failed,webhook=ops 1", "outcome=ok,webhook=ops 1"}},
		{"deferrals count by org and reason", "ecarotator_scheduler_deferrals_total", []string{"org=devhub-prod,reason=APIBudgetExceeded 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := fams[tt.metric]
			if !ok {
				t.Fatalf("metric %s missing from the scrape", tt.metric)
			}
			if got := series(f); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s = %v, want %v", tt.metric, got, tt.want)
			}
		})
	}

	t.Run("forgetting an app drops its series", func(t *testing.T) {
		m.ForgetApp("billing")
		fams, _ := scrape(t, reg)
		for name, f := range fams {
			for _, s := range series(f) {
				if strings.Contains(s, "app=billing") {
					t.Errorf("%s still has %s", name, s)
				}
			}
		}
	})
}

func TestNoSecretInLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "consumer-secret-never-a-label"
	s := rotator.NewSecret(secret)
	// Errors that quote secrets (a careless adapter) still become a class.
	m.VaultError(fmt.Errorf("vault: write failed for %s: %w", secret, rotator.ErrPermission))
	m.SalesforceError("devhub", fmt.Errorf("bad pair %s (%v)", secret, s))
	_, raw := scrape(t, reg)
	if strings.Contains(raw, secret) {
		t.Errorf("scrape contains the secret:\n%s", raw)
	}
	allowed := map[string]bool{}
	for _, c := range classes {
		allowed[c.class] = true
	}
	allowed[ClassOther], allowed[ClassTimeout] = true, true
	fams, _ := scrape(t, reg)
	for _, name := range []string{"ecarotator_vault_errors_total", "ecarotator_salesforce_errors_total"} {
		for _, met := range fams[name].GetMetric() {
			for _, l := range met.GetLabel() {
				if l.GetName() == LabelClass && !allowed[l.GetValue()] {
					t.Errorf("%s has class %q outside the closed set", name, l.GetValue())
				}
			}
		}
	}
}

func TestClass(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a CAS mismatch is a conflict", fmt.Errorf("w: %w", rotator.ErrConflict), ClassConflict},
		{"a lost lease is fenced", rotator.ErrFenced, ClassFenced},
		{"REQUEST_LIMIT_EXCEEDED is rate limited", rotator.ErrRateLimited, ClassRateLimited},
		{"a missing path is not found", rotator.ErrNotFound, ClassNotFound},
		{"a policy denial is permission", rotator.ErrPermission, ClassPermission},
		{"a dropped connection is unreachable", rotator.ErrUnreachable, ClassUnreachable},
		{"a deadline is a timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassTimeout},
		{"anything else is other", errors.New("weird"), ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Class(tt.err); got != tt.want {
				t.Errorf("Class(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := New(reg); !errors.As(err, &are) {
		t.Errorf("second New on one registry = %v, want AlreadyRegisteredError", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}
