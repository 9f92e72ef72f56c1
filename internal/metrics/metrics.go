package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dkimd/dkimd/internal/lifecycle"
	"github.com/dkimd/dkimd/internal/milter"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/relay"
)

// Sources are where the counters come from; a nil source is left out.
type Sources struct {
	Relay *relay.Metrics
	// Milter counts the milter's decisions.
	Milter *milter.Metrics
	Queue  queue.Queue
	// Lifecycle is the DNS monitor.
	Lifecycle Monitor
	// Now is the clock for the oldest message's age; nil means time.Now.
	Now func() time.Time
}

// Monitor is what the metrics read of lifecycle.Monitor.
type Monitor interface {
	Counters() lifecycle.Counters
	Alerts() []lifecycle.Alert
}

// Handler serves the metrics in the Prometheus text format.
func Handler(s Sources) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&collector{s: s})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

var (
	descSigned    = prometheus.NewDesc("dkimd_messages_signed_total", "Messages accepted and queued with at least one DKIM signature.", nil, nil)
	descUnsigned  = prometheus.NewDesc("dkimd_messages_unsigned_total", "Messages accepted and queued without a signature, by the reason of the signing decision.", []string{"reason"}, nil)
	descAccepted  = prometheus.NewDesc("dkimd_queue_accepted_total", "Messages stored in the queue.", nil, nil)
	descDelivered = prometheus.NewDesc("dkimd_queue_delivered_total", "Recipients delivered.", nil, nil)
	descDeferred  = prometheus.NewDesc("dkimd_queue_deferred_total", "Recipient delivery attempts that failed temporarily.", nil, nil)
	descBounced   = prometheus.NewDesc("dkimd_queue_bounced_total", "Recipients that failed permanently or expired.", nil, nil)
	descSize      = prometheus.NewDesc("dkimd_queue_messages", "Messages in the queue.", nil, nil)
	descRcpts     = prometheus.NewDesc("dkimd_queue_recipients", "Recipients still to deliver.", nil, nil)
	descOldest    = prometheus.NewDesc("dkimd_queue_oldest_age_seconds", "Age of the oldest queued message (0 when empty).", nil, nil)
	descChecks    = prometheus.NewDesc("dkimd_dns_checks_total", "DNS record checks made by the monitor, by outcome.", []string{"outcome"}, nil)
	descKeyEvents = prometheus.NewDesc("dkimd_key_events_total", "Key state changes the monitor made, by kind.", []string{"event"}, nil)
	descAlerts    = prometheus.NewDesc("dkimd_dns_alerts", "Active keys whose record is missing or changed now.", nil, nil)
	descMilter    = prometheus.NewDesc("dkimd_milter_messages_total", "Messages the milter decided on, by result (signed, unsigned, tempfail, rejected, accepted_on_error) and reason (the signing decision's, or the failure's class).", []string{"result", "reason"}, nil)
)

type collector struct{ s Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSigned, descUnsigned, descAccepted, descDelivered, descDeferred, descBounced, descSize, descRcpts, descOldest, descChecks, descKeyEvents, descAlerts, descMilter} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.s.Lifecycle != nil {
		n := c.s.Lifecycle.Counters()
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(n.Checks-n.TemporaryFailures), "answered")
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(n.TemporaryFailures), "temporary_failure")
		for event, v := range map[string]uint64{"alert": n.Alerts, "activation": n.Activations, "failover": n.Failovers, "archive": n.Archives, "error": n.Errors} {
			ch <- prometheus.MustNewConstMetric(descKeyEvents, prometheus.CounterValue, float64(v), event)
		}
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(len(c.s.Lifecycle.Alerts())))
	}
	if c.s.Relay != nil {
		snap := c.s.Relay.Snapshot()
		ch <- prometheus.MustNewConstMetric(descSigned, prometheus.CounterValue, float64(snap.Signed))
		for reason, n := range snap.Unsigned {
			ch <- prometheus.MustNewConstMetric(descUnsigned, prometheus.CounterValue, float64(n), string(reason))
		}
	}
	if c.s.Milter != nil {
		for k, n := range c.s.Milter.Snapshot() {
			ch <- prometheus.MustNewConstMetric(descMilter, prometheus.CounterValue, float64(n), k.Result, string(k.Reason))
		}
	}
	if c.s.Queue == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.s.Queue.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descSize, err)
		return
	}
	for d, v := range map[*prometheus.Desc]int64{descAccepted: st.Accepted, descDelivered: st.Delivered, descDeferred: st.Deferred, descBounced: st.Bounced} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(st.Messages))
	ch <- prometheus.MustNewConstMetric(descRcpts, prometheus.GaugeValue, float64(st.Recipients))
	age := 0.0
	if !st.Oldest.IsZero() {
		now := time.Now
		if c.s.Now != nil {
			now = c.s.Now
		}
		age = now().Sub(st.Oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
}
