// Package metrics holds the platform's Prometheus metrics in a registry of its
// own (never the global default registry) and serves them at /metrics. It is
// the only package that imports the Prometheus client.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/commands"
)

var (
	_ commands.Recorder    = (*Metrics)(nil)
	_ kafka.EngineObserver = (*Metrics)(nil)
)

// Metrics is safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	commands *prometheus.HistogramVec
	requests *prometheus.HistogramVec

	engineEvents     *prometheus.CounterVec
	engineIncentives prometheus.Counter
	engineRetries    prometheus.Counter
	engineBatches    *prometheus.HistogramVec
}

// New returns the platform's metrics, with Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "incentives_command_duration_seconds", Help: "Time to handle a command, by command and outcome (ok, rejected, failed).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"command", "outcome"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "incentives_http_request_duration_seconds", Help: "HTTP request latency by method, route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "status"}),
		engineEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incentives_engine_events_total", Help: "Action events the engine took from tenant-events, by result (decided, or dead-lettered as invalid).",
		}, []string{"result"}),
		engineIncentives: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "incentives_engine_incentives_total", Help: "Incentives the engine issued and published.",
		}),
		engineRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "incentives_engine_batch_retries_total", Help: "Failed attempts at deciding a batch (each retried until it succeeds).",
		}),
		engineBatches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "incentives_engine_batch_duration_seconds", Help: "Time from a batch's poll to its commit (stage total), and inside the decision transaction (stage decide).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"stage"}),
	}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commands, m.requests, m.engineEvents, m.engineIncentives, m.engineRetries, m.engineBatches)
	return m
}

// Registry returns the registry, for components that register their own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveCommand implements commands.Recorder.
func (m *Metrics) ObserveCommand(command string, took time.Duration, outcome string) {
	m.commands.WithLabelValues(command, outcome).Observe(took.Seconds())
}

// ObserveRequest records one HTTP request. route is the route pattern
// ("/api/v1/tenants/{tenantId}"), never the raw path, to bound cardinality.
func (m *Metrics) ObserveRequest(method, route string, status int, took time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Observe(took.Seconds())
}

// BatchCommitted implements kafka.EngineObserver.
func (m *Metrics) BatchCommitted(s kafka.BatchStats) {
	m.engineEvents.WithLabelValues("decided").Add(float64(s.Records - s.Invalid))
	m.engineEvents.WithLabelValues("invalid").Add(float64(s.Invalid))
	m.engineIncentives.Add(float64(s.Incentives))
	if s.Attempts > 1 {
		m.engineRetries.Add(float64(s.Attempts - 1))
	}
	m.engineBatches.WithLabelValues("total").Observe(s.Total.Seconds())
	m.engineBatches.WithLabelValues("decide").Observe(s.Handle.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// GaugeFunc registers a gauge whose value is read when scraped.
func (m *Metrics) GaugeFunc(name, help string, read func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}

// CounterFunc registers a counter whose value is read when scraped; read
// must never go down.
func (m *Metrics) CounterFunc(name, help string, read func() float64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, read))
}
