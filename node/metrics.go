package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medledger/medledger/node/api"
)

// metrics are the node's Prometheus metrics, in a registry of its own (several nodes
// may run in one process). Labels carry outcomes only: no IDs, no PHI.
type metrics struct {
	reg           *prometheus.Registry
	ingested      prometheus.Counter
	accesses      *prometheus.CounterVec
	accessSeconds prometheus.Histogram
	releases      *prometheus.CounterVec

	// The watchdog's facts and verdict (see Node.Health), as of its last check.
	height, peerHeight, blockAge, peers, catchingUp, healthy, failed prometheus.Gauge
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
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "medledger", Name: name, Help: help})
	}
	m.height = gauge("chain_height", "The last height this node committed.")
	m.peerHeight = gauge("chain_peer_height", "The highest height a connected peer reports committed.")
	m.blockAge = gauge("chain_latest_block_age_seconds", "Age of the latest committed block (by this node's clock against its BFT time); -1 before the first.")
	m.peers = gauge("chain_peers", "Connected consensus peers.")
	m.catchingUp = gauge("chain_catching_up", "1 while the node catches up by block sync.")
	m.healthy = gauge("healthy", "1 when /healthz says ok: the node serves keys and records.")
	m.failed = gauge("failed", "1 once the node has failed (consensus or storage): it is exiting.")
	m.reg.MustRegister(m.height, m.peerHeight, m.blockAge, m.peers, m.catchingUp, m.healthy, m.failed)
	m.reg.MustRegister(m.ingested, m.accesses, m.accessSeconds, m.releases,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// health records a watchdog check.
func (m *metrics) health(h api.Health) {
	m.height.Set(float64(h.Height))
	m.peerHeight.Set(float64(h.PeerHeight))
	m.blockAge.Set(h.LatestBlockAge)
	m.peers.Set(float64(h.Peers))
	m.catchingUp.Set(boolGauge(h.CatchingUp))
	m.healthy.Set(boolGauge(h.Status == api.StatusOK))
	m.failed.Set(boolGauge(h.Status == api.StatusFailed))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
