package oauth

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the manager's Prometheus collectors. The gauges are read
// from the token state at scrape time, so they are never stale.
type metrics struct {
	reg      prometheus.Registerer
	refresh  *prometheus.CounterVec
	gauges   *gaugeCollector
	register []prometheus.Collector
}

// gaugeCollector reports mailsync_oauth_token_expiry_seconds and
// mailsync_oauth_reauth_needed per account.
type gaugeCollector struct {
	m              *Manager
	expiry, reauth *prometheus.Desc
}

func newMetrics(m *Manager, reg prometheus.Registerer) (*metrics, error) {
	mt := &metrics{
		reg: reg,
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailsync", Name: "oauth_refresh_total",
			Help: "OAuth2 token requests by outcome: ok, invalid_grant, network, other.",
		}, []string{"account", "result"}),
		gauges: &gaugeCollector{
			m: m,
			expiry: prometheus.NewDesc("mailsync_oauth_token_expiry_seconds",
				"Seconds until the cached OAuth2 access token expires (0 when there is none; negative when expired).", []string{"account"}, nil),
			reauth: prometheus.NewDesc("mailsync_oauth_reauth_needed",
				"1 when the account needs `mailsync auth login` (refresh token revoked or expired, or none stored).", []string{"account"}, nil),
		},
	}
	// Every series exists from the start, so an alert on a rate sees 0
	// before the first failure.
	for _, id := range m.ids {
		for _, r := range []string{resultOK, resultInvalidGrant, resultNetwork, resultOther} {
			mt.refresh.WithLabelValues(id, r)
		}
	}
	if reg == nil {
		return mt, nil
	}
	for _, c := range []prometheus.Collector{mt.refresh, mt.gauges} {
		if err := reg.Register(c); err != nil {
			mt.unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("oauth: metrics already registered (close the previous Manager first)")
			}
			return nil, err
		}
		mt.register = append(mt.register, c)
	}
	return mt, nil
}

func (mt *metrics) refreshed(account, result string) {
	mt.refresh.WithLabelValues(account, result).Inc()
}

func (mt *metrics) unregister() {
	for _, c := range mt.register {
		mt.reg.Unregister(c)
	}
	mt.register = nil
}

// Describe implements prometheus.Collector.
func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.expiry
	ch <- g.reauth
}

// Collect implements prometheus.Collector.
func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	now := g.m.opts.Now()
	for _, id := range g.m.ids {
		a := g.m.accounts[id]
		a.mu.Lock()
		var secs float64
		if a.rec != nil && a.rec.Access != "" && !a.rec.Expiry.IsZero() {
			secs = a.rec.Expiry.Sub(now).Seconds()
		}
		reauth := 0.0
		if a.state == stateReauth || a.state == stateMissing {
			reauth = 1
		}
		a.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(g.expiry, prometheus.GaugeValue, secs, id)
		ch <- prometheus.MustNewConstMetric(g.reauth, prometheus.GaugeValue, reauth, id)
	}
}
