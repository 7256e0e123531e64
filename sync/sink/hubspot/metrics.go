package hubspot

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the adapter's calls, errors and remaining budget.
type metrics struct {
	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	remaining prometheus.Gauge
	daily     prometheus.Gauge
	throttled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsync_hubspot_requests_total",
			Help: "HubSpot API requests by operation and HTTP status."}, []string{"op", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsync_hubspot_errors_total",
			Help: "Failed HubSpot API requests by operation and kind (rate_limited, server, auth, refused, transport)."}, []string{"op", "kind"}),
		remaining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailsync_hubspot_ratelimit_remaining",
			Help: "X-HubSpot-RateLimit-Remaining of the last answer: requests left in the current 10 s window."}),
		daily: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailsync_hubspot_ratelimit_daily_remaining",
			Help: "X-HubSpot-RateLimit-Daily-Remaining of the last answer that had it (private apps)."}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsync_hubspot_throttle_seconds_total",
			Help: "Seconds requests waited for HubSpot's rate limit (429, Retry-After, exhausted window)."}),
	}
	m.calls = register(reg, m.calls)
	m.errors = register(reg, m.errors)
	m.remaining = register(reg, m.remaining)
	m.daily = register(reg, m.daily)
	m.throttled = register(reg, m.throttled)
	return m
}

// register adds c, or returns the collector already registered under its
// name (a sink opened twice against one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
