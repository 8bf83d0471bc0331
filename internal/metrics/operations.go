package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors for the alerting rules of examples/monitoring: the configured
// max age (an app past it), the secret-access setting's state (left open),
// and audit records that did not reach their sinks.
type operations struct {
	maxAge       *prometheus.GaugeVec
	secretAccess *prometheus.GaugeVec
	auditFails   prometheus.Counter
}

func newOperations() operations {
	return operations{
		maxAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "app_max_age_seconds",
			Help: "The app's configured max age: its pair must be rotated before last_success + this (0: no max age).",
		}, []string{LabelApp}),
		secretAccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "secret_access_open",
			Help: "1 while ecarotator has the Dev Hub's secret-access setting (enableClientSecretInRestApiAccess) open, 0 once restored; open for long means left open.",
		}, []string{LabelOrg}),
		auditFails: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "audit_record_failures_total",
			Help: "Audit events that were not durable in every configured sink (file, Vault).",
		}),
	}
}

func (o operations) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.maxAge, o.secretAccess, o.auditFails}
}

// SetMaxAge records an app's configured max age.
func (m *Metrics) SetMaxAge(app string, d time.Duration) {
	m.ops.maxAge.WithLabelValues(app).Set(d.Seconds())
}

// SetSecretAccessOpen records whether the Dev Hub's secret-access setting
// is open by ecarotator.
func (m *Metrics) SetSecretAccessOpen(org string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.ops.secretAccess.WithLabelValues(org).Set(v)
}

// AuditFailure counts an audit event that did not reach every sink.
func (m *Metrics) AuditFailure() { m.ops.auditFails.Inc() }
