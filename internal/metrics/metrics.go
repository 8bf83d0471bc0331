// Package metrics defines ecarotator's Prometheus collectors, modelled on
// cert-manager's: counters of rotations by outcome and failing step, a
// duration histogram, and per-app timestamps ("last success", "next
// rotation", "previous credential expires") that alerts compare with time().
//
// Every label value is an app name, a Dev Hub name, a webhook name or one
// of a closed set of words (outcome, step, error class, reason); a secret
// can never become a label because no method takes one.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecarotator/ecarotator/rotator"
)

// Namespace prefixes every metric name.
const Namespace = "ecarotator"

// Label names.
const (
	LabelApp     = "app"
	LabelOrg     = "org"
	LabelOutcome = "outcome"
	LabelStep    = "step"
	LabelClass   = "class"
	LabelWebhook = "webhook"
	LabelReason  = "reason"
)

// Metrics holds the collectors. Create it with New; the zero value is not
// usable. All methods are safe for concurrent use.
type Metrics struct {
	rotations       *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	lastSuccess     *prometheus.GaugeVec
	nextRotation    *prometheus.GaugeVec
	previousExpiry  *prometheus.GaugeVec
	orphaned        *prometheus.GaugeVec
	apiUsed         *prometheus.GaugeVec
	apiLimit        *prometheus.GaugeVec
	vaultErrors     *prometheus.CounterVec
	salesforceErrs  *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
	schedulerDefers *prometheus.CounterVec
	downtime        *prometheus.HistogramVec // metadata strategy (downtime.go)
	ops             operations               // max age, secret access, audit failures (operations.go)
}

// New creates the collectors and registers them on reg (a fresh
// prometheus.NewRegistry() in tests, the daemon's registry in production).
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: a registerer is required")
	}
	m := &Metrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rotations_total",
			Help: "Rotation attempts by app, outcome and the step they ended at (the failing step for failures).",
		}, []string{LabelApp, LabelOutcome, LabelStep}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "rotation_duration_seconds",
			Help: "Wall time of rotation attempts, verification propagation included.",
			// Salesforce propagation makes a rotation take minutes.
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800},
		}, []string{LabelApp, LabelOutcome}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_success_timestamp_seconds",
			Help: "Unix time of the app's last successful rotation.",
		}, []string{LabelApp}),
		nextRotation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "next_rotation_timestamp_seconds",
			Help: "Unix time the scheduler plans the app's next rotation.",
		}, []string{LabelApp}),
		previousExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "previous_credential_expiry_timestamp_seconds",
			Help: "Unix time the app's previous credential stops being valid (absent outside an overlap).",
		}, []string{LabelApp}),
		orphaned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "app_orphaned",
			Help: "1 when the app is orphaned and needs an operator, else 0; sum() counts orphaned apps.",
		}, []string{LabelApp}),
		apiUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "salesforce_api_requests_used",
			Help: "Daily API requests used by the Dev Hub org, from the last Sforce-Limit-Info header.",
		}, []string{LabelOrg}),
		apiLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "salesforce_api_requests_limit",
			Help: "Daily API request limit of the Dev Hub org, from the last Sforce-Limit-Info header.",
		}, []string{LabelOrg}),
		vaultErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "vault_errors_total",
			Help: "Vault errors by class.",
		}, []string{LabelClass}),
		salesforceErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "salesforce_errors_total",
			Help: "Salesforce errors by org and class.",
		}, []string{LabelOrg, LabelClass}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhook_deliveries_total",
			Help: "Finished webhook deliveries by webhook and outcome.",
		}, []string{LabelWebhook, LabelOutcome}),
		schedulerDefers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "scheduler_deferrals_total",
			Help: "Scheduled runs deferred, by Dev Hub org and reason (e.g. APIBudgetExceeded).",
		}, []string{LabelOrg, LabelReason}),
		downtime: newDowntime(),
		ops:      newOperations(),
	}
	for _, c := range append(m.ops.collectors(),
		m.downtime,
		m.rotations, m.duration, m.lastSuccess, m.nextRotation, m.previousExpiry, m.orphaned,
		m.apiUsed, m.apiLimit, m.vaultErrors, m.salesforceErrs, m.webhooks, m.schedulerDefers,
	) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves g in the Prometheus text format (the /metrics endpoint).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// ObserveRotation counts one finished rotation attempt and its duration.
// step is where it ended: the failing step, or StepFinish on success.
func (m *Metrics) ObserveRotation(app string, outcome rotator.Outcome, step rotator.Step, d time.Duration) {
	m.rotations.WithLabelValues(app, string(outcome), string(step)).Inc()
	m.duration.WithLabelValues(app, string(outcome)).Observe(d.Seconds())
}

// SetLastSuccess records the app's last successful rotation.
func (m *Metrics) SetLastSuccess(app string, t time.Time) { setTime(m.lastSuccess, app, t) }

// SetNextRotation records the app's planned next rotation (zero removes
// the series: nothing planned).
func (m *Metrics) SetNextRotation(app string, t time.Time) { setTime(m.nextRotation, app, t) }

// SetPreviousExpiry records when the app's previous pair expires (zero
// removes the series: no overlap).
func (m *Metrics) SetPreviousExpiry(app string, t time.Time) { setTime(m.previousExpiry, app, t) }

// SetOrphaned marks the app orphaned or not.
func (m *Metrics) SetOrphaned(app string, orphaned bool) {
	v := 0.0
	if orphaned {
		v = 1
	}
	m.orphaned.WithLabelValues(app).Set(v)
}

// SetAPIUsage records a Dev Hub's API usage.
func (m *Metrics) SetAPIUsage(org string, u rotator.APIUsage) {
	m.apiUsed.WithLabelValues(org).Set(float64(u.Used))
	if u.Limit > 0 {
		m.apiLimit.WithLabelValues(org).Set(float64(u.Limit))
	}
}

// VaultError counts a Vault error under its class (see Class).
func (m *Metrics) VaultError(err error) {
	if err != nil {
		m.vaultErrors.WithLabelValues(Class(err)).Inc()
	}
}

// SalesforceError counts a Salesforce error of org under its class.
func (m *Metrics) SalesforceError(org string, err error) {
	if err != nil {
		m.salesforceErrs.WithLabelValues(org, Class(err)).Inc()
	}
}

// WebhookDelivery counts a finished delivery: outcome "ok" or "failed".
func (m *Metrics) WebhookDelivery(webhook string, err error) {
	o := rotator.OutcomeOK
	if err != nil {
		o = rotator.OutcomeFailed
	}
	m.webhooks.WithLabelValues(webhook, string(o)).Inc()
}

// Deferred counts a run the scheduler deferred (reason is a scheduler
// Reason constant).
func (m *Metrics) Deferred(org, reason string) {
	m.schedulerDefers.WithLabelValues(org, reason).Inc()
}

// ForgetApp drops an app's per-app series (after a reload removed it).
func (m *Metrics) ForgetApp(app string) {
	l := prometheus.Labels{LabelApp: app}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.rotations, m.duration, m.lastSuccess, m.nextRotation, m.previousExpiry, m.orphaned, m.ops.maxAge,
	} {
		v.DeletePartialMatch(l)
	}
}

func setTime(g *prometheus.GaugeVec, app string, t time.Time) {
	if t.IsZero() {
		g.DeleteLabelValues(app)
		return
	}
	g.WithLabelValues(app).Set(float64(t.UnixNano()) / 1e9)
}

// Error classes, the closed set of "class" label values.
const (
	ClassNotFound    = "not_found"
	ClassConflict    = "conflict"
	ClassLocked      = "locked"
	ClassFenced      = "fenced"
	ClassPermission  = "permission"
	ClassRejected    = "rejected"
	ClassUnreachable = "unreachable"
	ClassRateLimited = "rate_limited"
	ClassAmbiguous   = "ambiguous"
	ClassSlotTaken   = "slot_occupied"
	ClassTimeout     = "timeout"
	ClassOther       = "other"
)

// classes maps the domain's sentinel errors to classes, most specific first.
var classes = []struct {
	err   error
	class string
}{
	{rotator.ErrRateLimited, ClassRateLimited},
	{rotator.ErrAmbiguous, ClassAmbiguous},
	{rotator.ErrFenced, ClassFenced},
	{rotator.ErrConflict, ClassConflict},
	{rotator.ErrLocked, ClassLocked},
	{rotator.ErrPermission, ClassPermission},
	{rotator.ErrRejected, ClassRejected},
	{rotator.ErrSlotOccupied, ClassSlotTaken},
	{rotator.ErrNotFound, ClassNotFound},
	{rotator.ErrUnreachable, ClassUnreachable},
}

// Class maps an error to its label value with errors.Is on the rotator
// sentinels; the error's text never becomes a label.
func Class(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.class
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	return ClassOther
}
