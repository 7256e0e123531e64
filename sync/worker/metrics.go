package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/store"
)

// metrics are the worker's Prometheus collectors, all labelled by account.
type metrics struct {
	delivered, excluded, skipped, deadLettered, duplicates *prometheus.CounterVec
	sinkLatency                                            *prometheus.HistogramVec
	reconnects, authFailures                               *prometheus.CounterVec
	connections                                            *prometheus.GaugeVec
	backfillDone, backfillTotal                            *prometheus.GaugeVec
	// stages is the time spent in each stage of the folder pipeline, over
	// all accounts (per account it would be 1,000 series for little use):
	// imap_headers, imap_bodies, parse_match, ledger_lookup, encode_ahead,
	// keyword_store. Beside the sink's and the state file's own time it
	// says which stage bounds a catch-up.
	stages *prometheus.CounterVec
	// dialWaiting is how many dials wait for a server's dial slot.
	dialWaiting prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mailsync", Name: name, Help: help}, []string{"account"})
	}
	byReason := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mailsync", Name: name, Help: help}, []string{"account", "reason"})
	}
	m := &metrics{
		delivered:    counter("messages_delivered_total", "Messages the sink acknowledged."),
		excluded:     byReason("messages_excluded_total", "Messages the matcher excluded, by reason code (internal, bulk, private, ...)."),
		skipped:      byReason("messages_skipped_total", "Messages not captured under the account's capture mode, by reason code (no_match, ...)."),
		deadLettered: counter("messages_dead_lettered_total", "Messages parked in the dead-letter list."),
		duplicates:   counter("messages_duplicate_total", "Copies of already delivered messages (provenance added)."),
		reconnects:   counter("imap_reconnects_total", "IMAP reconnects after an error."),
		authFailures: counter("imap_auth_failures_total", "IMAP authentication failures."),
		sinkLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mailsync", Name: "sink_batch_seconds", Help: "Time to deliver one batch to the sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"account"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "mailsync", Name: "imap_connections", Help: "Open IMAP connections.",
		}, []string{"account"}),
	}
	m.backfillDone = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "mailsync", Name: "backfill_done", Help: "Messages a backfill job has processed.",
	}, []string{"job"})
	m.backfillTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "mailsync", Name: "backfill_total", Help: "Messages a backfill job will process.",
	}, []string{"job"})
	m.stages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mailsync", Name: "stage_seconds_total", Help: "Time spent in each stage of the folder pipeline.",
	}, []string{"stage"})
	m.dialWaiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "mailsync", Name: "imap_dials_waiting", Help: "IMAP connections waiting for a dial slot of their server.",
	})
	if reg != nil {
		reg.MustRegister(m.stages, m.dialWaiting)
		reg.MustRegister(m.backfillDone, m.backfillTotal)
		reg.MustRegister(m.delivered, m.excluded, m.skipped, m.deadLettered, m.duplicates,
			m.reconnects, m.authFailures, m.sinkLatency, m.connections)
	}
	return m
}

func (m *metrics) observeSink(acct string, d time.Duration, n int) {
	m.sinkLatency.WithLabelValues(acct).Observe(d.Seconds())
}

// stage adds the time since start to a pipeline stage.
func (m *metrics) stage(name string, start time.Time) {
	m.stages.WithLabelValues(name).Add(time.Since(start).Seconds())
}

func (m *metrics) addOutcomes(acct string, c store.Counters, duplicates int) {
	m.delivered.WithLabelValues(acct).Add(float64(c.Delivered))
	m.deadLettered.WithLabelValues(acct).Add(float64(c.DeadLettered))
	m.duplicates.WithLabelValues(acct).Add(float64(duplicates))
}

// outcome counts one committed skip or exclusion under its reason code;
// addOutcomes counts the rest, which have no reason label.
func (m *metrics) outcome(acct string, a action, reason string) {
	switch a {
	case actSkip:
		m.skipped.WithLabelValues(acct, store.ReasonCode(reason)).Inc()
	case actExclude:
		m.excluded.WithLabelValues(acct, store.ReasonCode(reason)).Inc()
	}
}

func (m *metrics) reconnect(acct string)   { m.reconnects.WithLabelValues(acct).Inc() }
func (m *metrics) authFailure(acct string) { m.authFailures.WithLabelValues(acct).Inc() }
func (m *metrics) conns(acct string, delta int) {
	m.connections.WithLabelValues(acct).Add(float64(delta))
}

func (m *metrics) backfill(job string, done, total int) {
	m.backfillDone.WithLabelValues(job).Set(float64(done))
	m.backfillTotal.WithLabelValues(job).Set(float64(total))
}
