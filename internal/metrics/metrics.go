// Package metrics holds the sidecar's Prometheus metrics: one Metrics value
// per sidecar, registered on the sidecar's own registry and served on
// /metrics. Packages record into its fields directly; every field is safe
// for concurrent use.
//
// Names start with "sidecar_". Labels use the vocabulary of the event
// store: outcome, resolution, group, partition.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Append outcomes, the values of the outcome label of AppendDuration.
const (
	OutcomeOK          = "ok"
	OutcomeDuplicate   = "duplicate"   // a retry whose events had all landed
	OutcomeConflict    = "conflict"    // the expected version did not hold
	OutcomeClash       = "clash"       // an event id the stream holds with other content
	OutcomeInvalid     = "invalid"     // a malformed request
	OutcomeTooLarge    = "too_large"   // beyond a size limit
	OutcomeRefused     = "refused"     // Kafka refused the append for good
	OutcomeUnavailable = "unavailable" // a retry may succeed
	OutcomeCanceled    = "canceled"    // the caller gave up
	OutcomeError       = "error"       // anything else
)

// Lease resolutions, the values of the resolution label of LeasesExpired.
const (
	ResolutionCommitted = "committed" // the record had landed
	ResolutionReleased  = "released"  // it had not
)

// Produce error kinds, the values of the kind label of ProduceErrors.
const (
	ProduceRejected = "rejected" // a definite refusal: nothing was written
	ProduceUnknown  = "unknown"  // the outcome had to be resolved
)

// Metrics are the sidecar's metrics. The zero value is not usable; use New.
type Metrics struct {
	// AppendDuration is the latency of appends, by outcome, from the
	// request's arrival to its answer.
	AppendDuration *prometheus.HistogramVec
	// AppendConflicts counts appends refused because the stream's version
	// was not the expected one.
	AppendConflicts prometheus.Counter
	// ProduceErrors counts failed produces of appends, by kind.
	ProduceErrors *prometheus.CounterVec
	// LeasesExpired counts reservations whose lease ran out and were
	// resolved against the partition, by resolution.
	LeasesExpired *prometheus.CounterVec

	// IndexRebuilds counts rebuilds of the version index from the topic,
	// started at boot or after Redis lost data.
	IndexRebuilds prometheus.Counter
	// IndexRebuilding is 1 while a rebuild runs.
	IndexRebuilding prometheus.Gauge
	// IndexRebuildRecords counts the records rebuilds have read: the
	// progress of a running rebuild.
	IndexRebuildRecords prometheus.Counter

	// SubscribeDelivered counts events delivered by SubscribeToAll.
	SubscribeDelivered prometheus.Counter

	// Ready is 1 while the health service reports SERVING.
	Ready prometheus.Gauge

	// GroupSubscribers is the number of subscribers connected to this
	// sidecar per consumer group. Every series of a group is deleted when
	// its last subscriber here leaves.
	GroupSubscribers *prometheus.GaugeVec
	// GroupDelivered counts events delivered per group and partition of
	// the event topic, redeliveries and replayed deliveries included (in
	// the partition their events came from). A partition's series are
	// deleted when a rebalance takes it from this sidecar's member.
	GroupDelivered *prometheus.CounterVec
	// GroupAcked counts events acknowledged per group and partition; a
	// park or a skip counts, as it does for the commit.
	GroupAcked *prometheus.CounterVec
	// GroupLag is, per group and partition held here, how many records are
	// between the group's committed offset and the end of the partition,
	// as of the last fetch, partition refresh and commit.
	GroupLag *prometheus.GaugeVec
}

// New returns the metrics, registered on reg unless reg is nil.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		AppendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sidecar_append_duration_seconds",
			Help: "Latency of appends, by outcome.",
			// From a pipelined Redis round trip to a produce retried up to
			// the delivery timeout.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		AppendConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_append_conflicts_total",
			Help: "Appends refused because the stream's version was not the expected one.",
		}),
		ProduceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_produce_errors_total",
			Help: "Failed produces of appends: rejected (nothing written) or unknown (resolved against the partition).",
		}, []string{"kind"}),
		LeasesExpired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_leases_expired_total",
			Help: "Reservations whose lease ran out, by how they were resolved against the partition.",
		}, []string{"resolution"}),
		IndexRebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_index_rebuilds_total",
			Help: "Rebuilds of the version index from the topic.",
		}),
		IndexRebuilding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidecar_index_rebuilding",
			Help: "1 while the version index is being rebuilt; appends are refused meanwhile.",
		}),
		IndexRebuildRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_index_rebuild_records_read_total",
			Help: "Records read by rebuilds of the version index.",
		}),
		SubscribeDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidecar_subscribe_events_delivered_total",
			Help: "Events delivered by SubscribeToAll.",
		}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidecar_ready",
			Help: "1 while Kafka, Redis and the version index are ready.",
		}),
		GroupSubscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sidecar_group_subscribers",
			Help: "Subscribers connected, per consumer group.",
		}, []string{"group"}),
		GroupDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_group_events_delivered_total",
			Help: "Events delivered to subscribers, per consumer group and partition.",
		}, []string{"group", "partition"}),
		GroupAcked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidecar_group_events_acked_total",
			Help: "Events acknowledged by subscribers, per consumer group and partition.",
		}, []string{"group", "partition"}),
		GroupLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sidecar_group_lag",
			Help: "Records between a consumer group's committed offset and the end of the partition.",
		}, []string{"group", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.AppendDuration, m.AppendConflicts, m.ProduceErrors, m.LeasesExpired,
			m.IndexRebuilds, m.IndexRebuilding, m.IndexRebuildRecords, m.SubscribeDelivered, m.Ready,
			m.GroupSubscribers, m.GroupDelivered, m.GroupAcked, m.GroupLag)
	}
	return m
}

// Partition is the partition label of p.
func Partition(p int32) string { return strconv.FormatInt(int64(p), 10) }
