package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// runMainEnv makes the test binary run the command itself, so tests drive
// the real process: its signals, its exit status, its shutdown.
const runMainEnv = "SIDECAR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		os.Args = os.Args[:1]
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a sidecar running as a child process.
type process struct {
	cmd  *exec.Cmd
	addr string
	// exited is closed once the process exited and its log was read to
	// the end.
	exited chan struct{}
	err    error // the wait's result, once exited is closed

	mu  sync.Mutex
	log []string
}

// startProcess runs the command with env (SIDECAR_* settings) and waits
// until it serves.
func startProcess(t *testing.T, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "SIDECAR_GRPC_ADDR=127.0.0.1:0",
		"SIDECAR_HTTP_ADDR=", "SIDECAR_METRICS_ADDR=", "SIDECAR_LOG_FORMAT=json")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	listening := make(chan string, 1)
	// The log is read to its end before Wait, which closes the pipe and
	// would cut off the last lines ("sidecar stopped" among them); so once
	// exited is closed, the whole log is in p.log.
	go func() {
		p.readLog(stderr, listening)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("sidecar log:\n%s", strings.Join(p.lines(), "\n"))
		}
	})

	select {
	case p.addr = <-listening:
	case <-p.exited:
		t.Fatalf("sidecar exited at start: %v\n%s", p.err, strings.Join(p.lines(), "\n"))
	case <-time.After(90 * time.Second):
		t.Fatal("sidecar did not start listening")
	}
	return p
}

func (p *process) readLog(r io.Reader, listening chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.log = append(p.log, line)
		p.mu.Unlock()
		var entry struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "sidecar listening" {
			listening <- entry.Addr
		}
	}
	// A line too long for the scanner ends it: drain the rest, so that
	// the process never blocks on a full pipe.
	io.Copy(io.Discard, r)
}

func (p *process) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

func (p *process) logged(msg string) bool {
	for _, line := range p.lines() {
		var entry struct{ Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == msg {
			return true
		}
	}
	return false
}

func (p *process) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit, at most limit.
func (p *process) wait(t testing.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(limit):
		t.Fatalf("sidecar still running %s after the signal", limit)
		return nil
	}
}

// acked is what the clients saw acknowledged.
type acked struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (a *acked) add(ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		a.ids[id] = true
	}
}

func (a *acked) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids)
}

// appendUntilRefused appends to its own streams, recording every
// acknowledged event id, until the sidecar stops answering.
func appendUntilRefused(c eventstorepb.EventStoreServiceClient, writer int, a *acked) error {
	stream := fmt.Sprintf("content-%d-%s", writer, uuid.NewString())
	for version := int64(0); ; version++ {
		events := []*eventstorepb.Event{
			{EventId: uuid.NewString(), EventType: "ContentSubmitted", Data: []byte(`{}`)},
			{EventId: uuid.NewString(), EventType: "ContentAnalyzed", Data: []byte(`{}`)},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := c.AppendToStream(ctx, &eventstorepb.AppendRequest{
			StreamName: stream, ExpectedVersion: 2 * version, Events: events,
		})
		cancel()
		if err != nil {
			return err
		}
		if resp.CurrentVersion != 2*version+2 {
			return fmt.Errorf("stream %s: version %d after an append at %d", stream, resp.CurrentVersion, 2*version)
		}
		a.add(events[0].EventId, events[1].EventId)
	}
}

// topicEventIDs returns how often each event id occurs in the records.
func topicEventIDs(t testing.TB, records []*kgo.Record) map[string]int {
	t.Helper()
	ids := make(map[string]int)
	for _, r := range records {
		a, err := kafka.Decode(r)
		if errors.Is(err, kafka.ErrNotAnAppend) {
			continue
		}
		if err != nil {
			t.Fatalf("record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		for _, e := range a.Events {
			ids[e.EventId]++
		}
	}
	return ids
}

func TestSIGTERMUnderLoadKeepsEveryAcknowledgedAppend(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		const budget = 10 * time.Second
		topic := testenv.Topic(t)
		dataDir := t.TempDir()
		env := map[string]string{
			"SIDECAR_KAFKA_TOPIC":      topic,
			"SIDECAR_KAFKA_PARTITIONS": "4",
			"SIDECAR_DATA_DIR":         dataDir,
			"SIDECAR_SHUTDOWN_TIMEOUT": budget.String(),
		}
		if b.Real() {
			env["SIDECAR_KAFKA_BROKERS"] = strings.Join(b.Brokers, ",")
			env["SIDECAR_REDIS_URL"] = b.RedisURL
		}
		p := startProcess(t, env)
		c := testenv.Client(t, p.addr)

		a := &acked{ids: make(map[string]bool)}
		const writers = 32
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() { errs <- appendUntilRefused(c, i, a) })
		}
		deadline := time.Now().Add(60 * time.Second)
		for a.len() < 400 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if a.len() < 400 {
			t.Fatalf("only %d events acknowledged before the signal", a.len())
		}
		p.signal(t, syscall.SIGTERM)
		err := p.wait(t, budget+15*time.Second)
		wg.Wait()
		close(errs)
		if err != nil {
			t.Fatalf("sidecar exit: %v", err)
		}
		if !p.logged("sidecar stopped") {
			t.Fatal("the shutdown did not finish in order within its budget")
		}
		for err := range errs {
			if err == nil {
				t.Fatal("a writer ended without an error")
			}
		}

		var records []*kgo.Record
		if b.Real() {
			records = testenv.ReadTopic(t, b.Brokers, topic)
		} else {
			// The embedded broker persisted the topic; open its data.
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(dataDir, "kafka")))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			records = testenv.ReadTopic(t, kc.ListenAddrs(), topic)
		}
		inTopic := topicEventIDs(t, records)
		a.mu.Lock()
		defer a.mu.Unlock()
		for id := range a.ids {
			if inTopic[id] != 1 {
				t.Errorf("acknowledged event %s is %d times in the topic, want once", id, inTopic[id])
			}
		}
		t.Logf("%d events acknowledged, %d in the topic", len(a.ids), len(inTopic))
	})
}

func TestSecondSignalForcesExit(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	mr := miniredis.RunT(t)
	// Once held, every produce request waits, so an append stays in flight
	// and the graceful part of the shutdown cannot finish.
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if hold.Load() {
			select {
			case held <- struct{}{}:
			default:
			}
			kc.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})

	const budget = 60 * time.Second
	p := startProcess(t, map[string]string{
		"SIDECAR_KAFKA_BROKERS":    strings.Join(kc.ListenAddrs(), ","),
		"SIDECAR_REDIS_URL":        "redis://" + mr.Addr() + "/0",
		"SIDECAR_SHUTDOWN_TIMEOUT": budget.String(),
		// The held produce outlasts the two signals by far; the lease is
		// also what the first rebuild waits.
		"SIDECAR_APPEND_LEASE":     "6s",
		"SIDECAR_DELIVERY_TIMEOUT": "5s",
	})
	c := testenv.Client(t, p.addr)
	hold.Store(true)
	appended := make(chan error, 1)
	go func() {
		_, err := c.AppendToStream(context.Background(), &eventstorepb.AppendRequest{StreamName: "content-1",
			Events: []*eventstorepb.Event{{EventType: "ContentSubmitted", Data: []byte(`{}`)}}})
		appended <- err
	}()
	select {
	case <-held:
	case err := <-appended:
		t.Fatalf("append answered while produce requests were held: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no produce request reached the broker")
	}

	p.signal(t, syscall.SIGTERM)
	waitUntil(t, "the shutdown to start", func() bool { return p.logged("shutting down") })
	p.signal(t, syscall.SIGTERM)
	err = p.wait(t, budget/2)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit after the second signal: %v, want status %d", err, 128+int(syscall.SIGTERM))
	}
	if p.logged("sidecar stopped") {
		t.Fatal("the shutdown finished although the append was held")
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
