package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics, in a registry of its own (several nodes
// may run in one process). Labels carry outcomes only: no IDs, no PHI.
type metrics struct {
	reg           *prometheus.Registry
	ingested      prometheus.Counter
	accesses      *prometheus.CounterVec
	accessSeconds prometheus.Histogram
	releases      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "medledger", Name: "records_ingested_total",
			Help: "Records ingested and registered on the chain by this node.",
		}),
		accesses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "medledger", Name: "accesses_total",
			Help: "Record accesses this node asked for, by outcome (granted, denied by the chain, refused by custodians).",
		}, []string{"outcome"}),
		accessSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "medledger", Name: "access_seconds",
			Help:    "From submitting an access request to holding the plaintext.",
			Buckets: []float64{.05, .1, .15, .2, .25, .3, .4, .5, .75, 1, 2, 5},
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "medledger", Name: "key_releases_total",
			Help: "Key-release requests this node answered as custodian, by outcome (released or the refusal code).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.ingested, m.accesses, m.accessSeconds, m.releases,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
