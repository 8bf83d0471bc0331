package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newDowntime is the histogram of the metadata strategy's downtime window:
// from the deploy that replaced the secret (the old pair stops working) to
// the Vault commit of the new pair.
func newDowntime() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "metadata_downtime_seconds",
		Help:    "Metadata-strategy rotations: time from the rotating deploy being done to the new pair committed to Vault (apps holding the old pair fail meanwhile).",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{LabelApp})
}

// ObserveDowntime records one metadata rotation's downtime window.
func (m *Metrics) ObserveDowntime(app string, d time.Duration) {
	m.downtime.WithLabelValues(app).Observe(d.Seconds())
}
