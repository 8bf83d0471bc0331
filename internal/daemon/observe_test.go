package daemon

import (
	"errors"
	"testing"

	"github.com/ecarotator/ecarotator/internal/metrics"
	"github.com/ecarotator/ecarotator/rotator"
	"github.com/prometheus/client_golang/prometheus"
)

// gauge reads one series of name with label=value from reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					ok = true
				}
			}
			if !ok {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func TestObserveAuditFeedsTheAlertMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{metrics: m}
	steps := []struct {
		name      string
		ev        rotator.Event
		err       error
		wantOpen  float64
		wantFails float64
	}{
		{"the setting opened by a rotation is open", rotator.Event{Type: rotator.EventSecretAccessOpened, Org: "devhub", Outcome: rotator.OutcomeOK}, nil, 1, 0},
		{"an unrelated event changes nothing", rotator.Event{Type: rotator.EventRotationSucceeded, Org: "devhub", Outcome: rotator.OutcomeOK}, nil, 1, 0},
		{"a record that failed is counted", rotator.Event{Type: rotator.EventRotationSucceeded, Org: "devhub", Outcome: rotator.OutcomeOK}, errors.New("disk full"), 1, 1},
		{"the setting restored is closed", rotator.Event{Type: rotator.EventSecretAccessRestored, Org: "devhub", Outcome: rotator.OutcomeOK}, nil, 0, 1},
	}
	for _, s := range steps {
		d.observeAudit(s.ev, s.err)
		if got := gauge(t, reg, "ecarotator_secret_access_open", "org", "devhub"); got != s.wantOpen {
			t.Errorf("%s: secret_access_open = %v, want %v", s.name, got, s.wantOpen)
		}
		if got := gauge(t, reg, "ecarotator_audit_record_failures_total", "", ""); got != s.wantFails {
			t.Errorf("%s: audit_record_failures_total = %v, want %v", s.name, got, s.wantFails)
		}
	}
}
