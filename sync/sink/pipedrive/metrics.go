package pipedrive

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	remaining prometheus.Gauge
	daily     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var err error
	m := &metrics{
		calls: register(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsync_pipedrive_calls_total", Help: "Pipedrive API calls by endpoint and HTTP status (0: no response).",
		}, []string{"op", "code"})),
		errors: register(reg, &err, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsync_pipedrive_errors_total", Help: "Failed Pipedrive API calls by kind (rate_limited, unauthorized, server, refused, transport).",
		}, []string{"kind"})),
		remaining: register(reg, &err, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsync_pipedrive_ratelimit_remaining", Help: "Requests left in Pipedrive's current rate-limit window (x-ratelimit-remaining).",
		})),
		daily: register(reg, &err, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsync_pipedrive_daily_requests_left", Help: "Pipedrive's daily budget left (x-daily-requests-left).",
		})),
	}
	return m, err
}

// register registers c, or returns the collector already registered under
// its name (a reopened sink keeps counting in the same series).
func register[T prometheus.Collector](reg prometheus.Registerer, errp *error, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if e, ok := are.ExistingCollector.(T); ok {
				return e
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}

func (m *metrics) call(op string, code int) { m.calls.WithLabelValues(op, strconv.Itoa(code)).Inc() }
func (m *metrics) fail(kind string)         { m.errors.WithLabelValues(kind).Inc() }
