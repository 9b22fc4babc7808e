package sidecar_test

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	"github.com/eventsidecar/sidecar/internal/metrics"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// scrape reads /metrics of the sidecar at addr.
func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// value is the value of the metric of family name whose labels include
// labels (name, value pairs): a counter's or gauge's value, a histogram's
// count. A metric not exposed (yet) is 0.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func TestMetricsAfterAppends(t *testing.T) {
	fb := startFakeBackend(t)
	cfg := opsConfig(t, fb.Backend)
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	eventually(t, "ready", func() bool { return wantReady(t, sc, true) })

	// Two appends, a retry of the second, a conflict and an invalid one.
	mustAppend(t, c, "content-1", 0, event("ContentSubmitted", "{}"))
	retried := event("ContentAnalyzed", "{}")
	retried.EventId = uuid.NewString()
	mustAppend(t, c, "content-1", 1, retried)
	mustAppend(t, c, "content-1", 1, retried)
	_, err := appendEvents(t, c, "content-1", 1, event("ContentAnalyzed", "{}"))
	wantCode(t, err, codes.Aborted)
	_, err = appendEvents(t, c, "content-1", 2, &eventstorepb.Event{})
	wantCode(t, err, codes.InvalidArgument)

	// A reservation whose sidecar died long ago: the next append resolves
	// its lease, and its record never landed.
	rdb := redis.NewClient(&redis.Options{Addr: fb.redis.Addr()})
	defer rdb.Close()
	_, err = versions.New(rdb, cfg.KafkaTopic).Reserve(t.Context(), versions.ReserveRequest{
		Stream: "content-2", Expected: 0, Token: uuid.NewString(), Now: time.Now().Add(-time.Hour),
		Lease: time.Second, Events: []versions.EventKey{{ID: uuid.NewString(), Hash: "h"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, c, "content-2", 0, event("ContentSubmitted", "{}"))

	got := subscribe(t, c, 0, 0, func(es []*eventstorepb.Event) bool { return len(es) == 3 })

	eventually(t, "the subscription's deliveries counted", func() bool {
		return value(scrape(t, sc.MetricsAddr()), "sidecar_subscribe_events_delivered_total") >= float64(len(got))
	})
	fams := scrape(t, sc.MetricsAddr())
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sidecar_append_duration_seconds", []string{"outcome", "ok"}, 3},
		{"sidecar_append_duration_seconds", []string{"outcome", "duplicate"}, 1},
		{"sidecar_append_duration_seconds", []string{"outcome", "conflict"}, 1},
		{"sidecar_append_duration_seconds", []string{"outcome", "invalid"}, 1},
		{"sidecar_append_conflicts_total", nil, 1},
		{"sidecar_leases_expired_total", []string{"resolution", "released"}, 1},
		{"sidecar_leases_expired_total", []string{"resolution", "committed"}, 0},
		{"sidecar_produce_errors_total", nil, 0},
		{"sidecar_index_rebuilds_total", nil, 1},
		{"sidecar_index_rebuilding", nil, 0},
		{"sidecar_ready", nil, 1},
	} {
		if v := value(fams, tt.name, tt.labels...); v != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, v, tt.want)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

func TestMetricsCountRebuildProgress(t *testing.T) {
	fb := startFakeBackend(t)
	cfg := opsConfig(t, fb.Backend)
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	for i := range 5 {
		mustAppend(t, c, "content-1", int64(i), event("ContentSubmitted", "{}"))
	}
	before := value(scrape(t, sc.MetricsAddr()), "sidecar_index_rebuild_records_read_total")

	fb.redis.FlushAll()
	_, err := appendEvents(t, c, "content-1", 5, event("ContentAnalyzed", "{}"))
	wantCode(t, err, codes.Unavailable)
	eventually(t, "the rebuild running", func() bool {
		return value(scrape(t, sc.MetricsAddr()), "sidecar_index_rebuilding") == 1
	})
	// Readiness is checked every interval: it may still say ready from
	// before the flush until its next check.
	eventually(t, "not ready during the rebuild", func() bool { return wantReady(t, sc, false) })
	eventually(t, "the rebuild done", func() bool { return wantReady(t, sc, true) })

	fams := scrape(t, sc.MetricsAddr())
	if v := value(fams, "sidecar_index_rebuilds_total"); v != 2 {
		t.Errorf("rebuilds %v, want 2 (boot and after the flush)", v)
	}
	if v := value(fams, "sidecar_index_rebuild_records_read_total") - before; v < 5 {
		t.Errorf("the rebuild read %v records, want at least 5", v)
	}
	if v := value(fams, "sidecar_index_rebuilding"); v != 0 {
		t.Errorf("rebuilding %v after the rebuild", v)
	}
}

// groupSeries returns the series of family name for group, by partition
// label; the subscriber gauge, which has none, is under "".
func groupSeries(fams map[string]*dto.MetricFamily, name, group string) map[string]float64 {
	out := map[string]float64{}
	f, ok := fams[name]
	if !ok {
		return out
	}
	for _, m := range f.Metric {
		var g, p string
		for _, lp := range m.Label {
			switch lp.GetName() {
			case "group":
				g = lp.GetValue()
			case "partition":
				p = lp.GetValue()
			}
		}
		if g != group {
			continue
		}
		switch {
		case m.Counter != nil:
			out[p] = m.Counter.GetValue()
		case m.Gauge != nil:
			out[p] = m.Gauge.GetValue()
		}
	}
	return out
}

// sameSeries reports whether got has exactly the series of want.
func sameSeries(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

func TestGroupMetrics(t *testing.T) {
	cfg := opsConfig(t, testenv.Backend{Name: "embedded"})
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	const group = "metered"
	families := func() map[string]*dto.MetricFamily { return scrape(t, sc.MetricsAddr()) }
	series := func(name string) map[string]float64 { return groupSeries(families(), name, group) }
	seriesAre := func(what, name string, want map[string]float64) {
		t.Helper()
		eventually(t, what, func() bool { return sameSeries(series(name), want) })
	}

	a := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: group})
	if m := a.next(wait); m.GetCaughtUp() == nil {
		t.Fatalf("first message %v, want caught up on the empty topic", m)
	}
	seriesAre("one subscriber", "sidecar_group_subscribers", map[string]float64{"": 1})
	zero := map[string]float64{"0": 0, "1": 0, "2": 0, "3": 0}
	seriesAre("no lag on the empty topic", "sidecar_group_lag", zero)

	// Delivered and not acked: the events are the group's lag.
	streams := streamNames("metered", 12)
	appendMany(t, c, streams, 1)
	got := a.collect(len(streams), false, wait)
	perPartition := maps.Clone(zero)
	for _, d := range got.deliveries {
		perPartition[metrics.Partition(d.Position.Partition)]++
	}
	seriesAre("deliveries counted", "sidecar_group_events_delivered_total", withoutZeros(perPartition))
	seriesAre("the lag of what is not acked", "sidecar_group_lag", perPartition)
	if acked := series("sidecar_group_events_acked_total"); len(acked) != 0 {
		t.Fatalf("acked %v before any ack", acked)
	}

	// Acked and committed: no lag left.
	for _, d := range got.deliveries {
		a.ack(d.Position)
	}
	seriesAre("acks counted", "sidecar_group_events_acked_total", withoutZeros(perPartition))
	seriesAre("no lag after the acks", "sidecar_group_lag", zero)

	// A second member takes partitions from the first: their delivery
	// and ack series go with them; the lag of every partition stays.
	b := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: group})
	var taken []string
	for len(taken) == 0 {
		for _, p := range b.next(wait).GetCaughtUp().GetPositions() {
			taken = append(taken, metrics.Partition(p.Partition))
		}
	}
	kept := withoutZeros(perPartition)
	for _, p := range taken {
		delete(kept, p)
	}
	seriesAre("two subscribers", "sidecar_group_subscribers", map[string]float64{"": 2})
	seriesAre("deliveries of the partitions kept", "sidecar_group_events_delivered_total", kept)
	seriesAre("acks of the partitions kept", "sidecar_group_events_acked_total", kept)
	seriesAre("the lag of every partition", "sidecar_group_lag", zero)

	// Both leave: nothing of the group is left.
	a.close()
	b.close()
	for _, name := range []string{"sidecar_group_subscribers", "sidecar_group_events_delivered_total",
		"sidecar_group_events_acked_total", "sidecar_group_lag"} {
		seriesAre("no "+name+" once the group has no subscriber", name, map[string]float64{})
	}
}

func withoutZeros(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
