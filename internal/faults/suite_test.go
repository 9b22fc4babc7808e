//go:build faults

package faults_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/eventsidecar/sidecar/internal/faults"
)

// TestFaults runs the fault suite: `make test-faults` builds the sidecar,
// starts a Kafka and a Redis of the suite's own and sets the variables read
// here.
func TestFaults(t *testing.T) {
	port := func(name string) int {
		p, err := strconv.Atoi(os.Getenv(name))
		if err != nil {
			t.Fatalf("%s: %q is not a port; run make test-faults", name, os.Getenv(name))
		}
		return p
	}
	bin, dir := os.Getenv("SIDECAR_BIN"), os.Getenv("SERVICES_DIR")
	if bin == "" || dir == "" {
		t.Fatal("SIDECAR_BIN and SERVICES_DIR must be set; run make test-faults")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var duration time.Duration
	if d := os.Getenv("SIDECAR_FAULTS_DURATION"); d != "" {
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("SIDECAR_FAULTS_DURATION: %v", err)
		}
	}
	started := time.Now()
	runDir := filepath.Join(dir, "runs", started.Format("20060102-150405"))
	res, err := faults.Run(t.Context(), faults.Config{
		Bin: bin,
		Services: faults.Services{
			Scripts:             filepath.Join(root, "scripts"),
			Dir:                 dir,
			KafkaPort:           port("KAFKA_PORT"),
			KafkaControllerPort: port("KAFKA_CONTROLLER_PORT"),
			RedisPort:           port("REDIS_PORT"),
		},
		Dir:      runDir,
		Topic:    fmt.Sprintf("faults-%s-%04x", started.Format("150405"), rand.Uint32N(1<<16)),
		Duration: duration,
		Logf:     t.Logf,
	})
	if err != nil {
		t.Fatalf("fault suite: %v (logs in %s)", err, runDir)
	}
	t.Logf("fault suite finished in %s, logs in %s\n%s", time.Since(started).Round(time.Second), runDir, res.Summary())
	for _, kind := range faults.Kinds {
		if res.Faults[kind] == 0 {
			t.Errorf("no fault of kind %q was injected: the run proves less than it should", kind)
		}
	}
	if res.Acked == 0 {
		t.Error("no append was acknowledged")
	}
	if len(res.Violations) > 0 {
		t.Errorf("%d violations", len(res.Violations))
	}
}
