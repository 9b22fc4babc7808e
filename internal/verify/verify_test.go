package verify_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/verify"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const topic = "events"

// cluster starts a one-broker kfake with a two-partition event topic.
func cluster(t *testing.T) kafka.Config {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	kcfg := kafka.Config{Brokers: kc.ListenAddrs(), Topic: topic}
	cl, err := kafka.NewAdminClient(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, _, err = kafka.EnsureTopic(t.Context(), kadm.NewClient(cl),
		kafka.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kcfg
}

// rec is a record to write by hand, one event per id.
type rec struct {
	stream    string
	partition int32
	first     int64
	ids       []string
	// version, when set, is the version written into every event instead
	// of its place in the record.
	version int64
	// raw, when set, is written as the record's value as is.
	raw []byte
	// foreign leaves out the store's headers.
	foreign bool
	// fence writes a fence of the stream instead of an append.
	fence bool
	// traced adds trace context headers, as a traced append has.
	traced bool
}

// on is a record of stream from version first, one event per id.
func on(stream string, first int64, ids ...string) rec {
	return rec{stream: stream, first: first, ids: ids}
}

func (r rec) in(partition int32) rec                 { r.partition = partition; return r }
func (r rec) versioned(v int64) rec                  { r.version = v; return r }
func (r rec) value(raw []byte) rec                   { r.raw = raw; return r }
func (r rec) foreigner() rec                         { r.foreign = true; return r }
func (r rec) fenced() rec                            { r.fence = true; return r }
func (r rec) withTrace() rec                         { r.traced = true; return r }
func kinds(k verify.Kind, n int) map[verify.Kind]int { return map[verify.Kind]int{k: n} }

func write(t *testing.T, kcfg kafka.Config, recs ...rec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, r := range recs {
		a := &eventstorepb.RecordedAppend{StreamName: r.stream, FirstVersion: r.first, Token: fmt.Sprintf("token-%d", i)}
		for j, id := range r.ids {
			v := r.first + int64(j)
			if r.version != 0 {
				v = r.version
			}
			a.Events = append(a.Events, &eventstorepb.Event{EventId: id, EventType: "E", AggregateId: r.stream,
				AggregateVersion: v})
		}
		kr, err := kafka.NewRecord(topic, r.partition, a)
		if err != nil {
			t.Fatal(err)
		}
		if r.fence {
			kr = kafka.NewFence(topic, r.partition, r.stream, a.Token)
		}
		if r.raw != nil {
			kr.Value = r.raw
		}
		if r.foreign {
			kr.Headers = nil
		}
		if r.traced {
			kr.Headers = append(kr.Headers,
				kgo.RecordHeader{Key: kafka.HeaderTraceparent, Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
				kgo.RecordHeader{Key: kafka.HeaderTracestate, Value: []byte("vendor=1")})
		}
		if err := cl.ProduceSync(t.Context(), kr).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, opts verify.Options) *verify.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts.Logger = testenv.Logger(t)
	rep, err := verify.Run(ctx, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func TestTopicProblems(t *testing.T) {
	tests := []struct {
		name    string
		recs    []rec
		want    map[verify.Kind]int
		foreign int
	}{
		{"healthy", []rec{on("a", 1, "x", "y"), on("a", 3, "z")}, nil, 0},
		{"gap", []rec{on("a", 1, "x"), on("a", 4, "y")}, kinds(verify.Gap, 1), 0},
		{"gap filled late", []rec{on("a", 1, "x"), on("a", 3, "z"), on("a", 2, "y")}, kinds(verify.OutOfOrder, 1), 0},
		{"same append twice", []rec{on("a", 1, "x", "y"), on("a", 1, "x", "y")}, kinds(verify.DuplicateVersion, 1), 0},
		{"superseded", []rec{on("a", 1, "x"), on("a", 1, "other")}, kinds(verify.Superseded, 1), 0},
		{"event id twice", []rec{on("a", 1, "x"), on("a", 2, "x")}, kinds(verify.DuplicateEventID, 1), 0},
		{"split across partitions", []rec{on("a", 1, "x"), on("a", 2, "y").in(1)}, kinds(verify.SplitPartition, 1), 0},
		{"event versions out of order", []rec{on("a", 1, "x", "y").versioned(7)}, kinds(verify.OutOfOrder, 2), 0},
		{"undecodable", []rec{on("a", 1, "x").value([]byte{0xff, 0xff, 0xff})}, kinds(verify.Undecodable, 1), 0},
		{"foreign records are skipped", []rec{on("a", 1, "x").foreigner(), on("b", 1, "x")}, nil, 1},
		{"fences hold no events", []rec{on("a", 1, "x"), on("a", 0).fenced(), on("a", 2, "y")}, nil, 0},
		{"streams are independent", []rec{on("a", 1, "x"), on("b", 1, "x").in(1), on("a", 2, "y")}, nil, 0},
		{"trace context is no problem", []rec{on("a", 1, "x").withTrace(), on("a", 2, "y").withTrace()}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kcfg := cluster(t)
			write(t, kcfg, tt.recs...)
			rep := run(t, verify.Options{Kafka: kcfg})
			if !maps.Equal(rep.ByKind, tt.want) && !(len(rep.ByKind) == 0 && len(tt.want) == 0) {
				t.Fatalf("problems %v, want %v: %v", rep.ByKind, tt.want, rep.Problems)
			}
			if n := rep.Records + rep.Fences + rep.Foreign + rep.ByKind[verify.Undecodable]; n != len(tt.recs) {
				t.Fatalf("%d records, %d fences, %d foreign, %d undecodable: %d in all, want %d", rep.Records,
					rep.Fences, rep.Foreign, rep.ByKind[verify.Undecodable], n, len(tt.recs))
			}
			if rep.Foreign != tt.foreign {
				t.Fatalf("%d foreign records, want %d", rep.Foreign, tt.foreign)
			}
			if rep.OK() != (len(tt.want) == 0) {
				t.Fatalf("OK is %v with %d problems", rep.OK(), rep.ProblemCount)
			}
		})
	}
}

// storeRig is a store over kfake and miniredis, to verify what it wrote.
type storeRig struct {
	kcfg  kafka.Config
	mr    *miniredis.Miniredis
	index *versions.Index
	st    *store.Store
}

func newStoreRig(t *testing.T) *storeRig {
	t.Helper()
	kcfg := cluster(t)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	admCl, err := kafka.NewAdminClient(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	producer, err := kafka.NewProducer(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	index := versions.New(rdb, topic)
	// An index that was built before: opening the store rebuilds nothing.
	if err := index.WriteEpoch(t.Context(), "built"); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(index, producer, kafka.NewReader(kcfg, admCl), kcfg,
		store.Options{Topic: topic, RebuildSettle: -1, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &storeRig{kcfg: kcfg, mr: mr, index: index, st: st}
}

// appendN appends n single-event appends to each stream.
func (r *storeRig) appendN(t *testing.T, n int, streams ...string) {
	t.Helper()
	for _, s := range streams {
		for v := range n {
			req := &eventstorepb.AppendRequest{StreamName: s, ExpectedVersion: int64(v),
				Events: []*eventstorepb.Event{{EventId: fmt.Sprintf("%s-%d", s, v), EventType: "E"}}}
			if _, err := r.st.Append(t.Context(), req); err != nil {
				t.Fatalf("append %s at %d: %v", s, v, err)
			}
		}
	}
	// Commits run after the reply; a read of each stream waits for them.
	for _, s := range streams {
		if _, err := r.st.GetStream(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func meta(stream string) string { return "es:" + topic + ":{" + stream + "}:m" }

func TestStoreTopicVerifies(t *testing.T) {
	r := newStoreRig(t)
	r.appendN(t, 3, "alpha", "beta", "gamma")
	rep := run(t, verify.Options{Kafka: r.kcfg, Index: r.index, KeepEvents: true})
	if !rep.OK() || !rep.IndexChecked {
		t.Fatalf("problems %v (index checked %v)", rep.Problems, rep.IndexChecked)
	}
	if rep.Streams != 3 || rep.Records != 9 || rep.Events != 9 {
		t.Fatalf("%d streams, %d records, %d events; want 3, 9, 9", rep.Streams, rep.Records, rep.Events)
	}
	for _, s := range []string{"alpha", "beta", "gamma"} {
		evs := rep.StreamEvents[s]
		if len(evs) != 3 || evs[0].ID != s+"-0" || evs[2].Version != 3 {
			t.Fatalf("stream %s: events %+v", s, evs)
		}
	}
}

func TestIndexProblems(t *testing.T) {
	// One stream per case, all spoiled in one index and verified at once;
	// "untouched" is left as the store wrote it.
	tests := []struct {
		stream string
		spoil  func(r *storeRig, meta string)
		want   verify.Kind // "" for no problem
	}{
		{"version-behind", func(r *storeRig, m string) { r.mr.HSet(m, "v", "2") }, verify.IndexVersion},
		{"version-ahead", func(r *storeRig, m string) { r.mr.HSet(m, "v", "9") }, verify.IndexVersion},
		{"partition", func(r *storeRig, m string) {
			r.mr.HSet(m, "p", map[string]string{"0": "1", "1": "0"}[r.mr.HGet(m, "p")])
		}, verify.IndexPartition},
		{"last-offset", func(r *storeRig, m string) { r.mr.HSet(m, "o", "1234") }, verify.IndexOffset},
		{"missing", func(r *storeRig, m string) { r.mr.Del(m) }, verify.IndexMissing},
		{"pending-commit", func(r *storeRig, m string) {
			// The last append landed and its commit has not run yet.
			r.mr.HSet(m, "v", "2", "o", r.mr.HGet(m, "o"), "rt", "t", "rv", "3", "rn", "1",
				"rp", r.mr.HGet(m, "p"), "rd", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
		}, ""},
		{"untouched", func(*storeRig, string) {}, ""},
	}
	r := newStoreRig(t)
	want := map[string]verify.Kind{"ghost": verify.IndexExtra}
	for _, tt := range tests {
		r.appendN(t, 3, tt.stream)
	}
	for _, tt := range tests {
		tt.spoil(r, meta(tt.stream))
		if tt.want != "" {
			want[tt.stream] = tt.want
		}
	}
	// Only in the index.
	r.mr.HSet(meta("ghost"), "v", "2", "p", "0", "o", "0")

	rep := run(t, verify.Options{Kafka: r.kcfg, Index: r.index})
	got := make(map[string]verify.Kind)
	for _, p := range rep.Problems {
		if _, twice := got[p.Stream]; twice {
			t.Fatalf("stream %q has more than one problem: %v", p.Stream, rep.Problems)
		}
		got[p.Stream] = p.Kind
	}
	if !maps.Equal(got, want) {
		t.Fatalf("problems by stream %v, want %v: %v", got, want, rep.Problems)
	}
	if rep.Reservations != 1 || rep.Expired != 0 {
		t.Fatalf("%d reservations, %d expired; want the pending commit's one, live", rep.Reservations, rep.Expired)
	}
}

func TestIndexWithoutEpochIsNotCompared(t *testing.T) {
	r := newStoreRig(t)
	r.appendN(t, 3, "a")
	for _, k := range r.mr.Keys() {
		if strings.HasPrefix(k, "es:"+topic+":epoch:") {
			r.mr.Del(k)
		}
	}
	r.mr.HSet(meta("a"), "v", "1")
	rep := run(t, verify.Options{Kafka: r.kcfg, Index: r.index})
	if rep.IndexChecked || !maps.Equal(rep.ByKind, map[verify.Kind]int{verify.IndexNoEpoch: 1}) {
		t.Fatalf("index checked %v, problems %v; want only the missing epoch", rep.IndexChecked, rep.Problems)
	}
}

func TestIndexAheadOfTheTopicReadIsReadFurther(t *testing.T) {
	r := newStoreRig(t)
	r.appendN(t, 2, "a")
	appended := false
	rep := run(t, verify.Options{Kafka: r.kcfg, Index: r.index, Progress: func(p verify.Progress) {
		// The stream moves on once the first pass has read the topic,
		// before the index is compared with it.
		if p.Done < p.Total || appended {
			return
		}
		appended = true
		req := &eventstorepb.AppendRequest{StreamName: "a", ExpectedVersion: 2,
			Events: []*eventstorepb.Event{{EventId: "late", EventType: "E"}}}
		if _, err := r.st.Append(context.Background(), req); err != nil {
			t.Errorf("late append: %v", err)
		}
		if _, err := r.st.GetStream(context.Background(), "a"); err != nil {
			t.Errorf("read after the late append: %v", err)
		}
	}})
	if !appended || !rep.OK() || rep.Events != 3 {
		t.Fatalf("appended %v, %d events, problems %v; want the late append read too", appended, rep.Events, rep.Problems)
	}
}
