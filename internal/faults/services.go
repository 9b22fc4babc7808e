package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Services are the Kafka broker and the Redis the run owns, controlled
// through the project's scripts.
type Services struct {
	// Scripts is the folder holding kafka.sh and redis.sh.
	Scripts string
	// Dir is the scripts' SERVICES_DIR: state, data and logs.
	Dir string
	// KafkaPort, KafkaControllerPort and RedisPort are the loopback ports.
	KafkaPort, KafkaControllerPort, RedisPort int
}

// Brokers is the broker's address.
func (s Services) Brokers() []string { return []string{"127.0.0.1:" + strconv.Itoa(s.KafkaPort)} }

// RedisAddr is the Redis's address.
func (s Services) RedisAddr() string { return "127.0.0.1:" + strconv.Itoa(s.RedisPort) }

// RedisURL is the Redis's URL.
func (s Services) RedisURL() string { return "redis://" + s.RedisAddr() + "/0" }

// sharedPorts are the ports of the services every other test uses.
var sharedPorts = map[int]bool{19092: true, 19093: true, 16379: true}

// Check refuses a configuration that would fault services others use.
func (s Services) Check() error {
	for _, p := range []int{s.KafkaPort, s.KafkaControllerPort, s.RedisPort} {
		if p == 0 || sharedPorts[p] {
			return fmt.Errorf("port %d: the fault suite needs a Kafka and a Redis of its own, on other ports", p)
		}
	}
	if s.Dir == "" {
		return fmt.Errorf("the fault suite needs a services directory of its own")
	}
	return nil
}

func (s Services) script(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.Scripts, name), args...)
	cmd.Env = append(os.Environ(),
		"SERVICES_DIR="+s.Dir,
		"KAFKA_PORT="+strconv.Itoa(s.KafkaPort),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(s.KafkaControllerPort),
		"REDIS_PORT="+strconv.Itoa(s.RedisPort),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out.Bytes())
	}
	return nil
}

// Start starts both services unless they run; it waits until they answer.
func (s Services) Start(ctx context.Context) error {
	if err := s.script(ctx, "redis.sh", "start"); err != nil {
		return err
	}
	return s.script(ctx, "kafka.sh", "start")
}

// RestartRedis stops Redis and starts it again with nothing persisted.
func (s Services) RestartRedis(ctx context.Context) error {
	if err := s.script(ctx, "redis.sh", "stop"); err != nil {
		return err
	}
	return s.script(ctx, "redis.sh", "start")
}

// FlushRedis empties Redis.
func (s Services) FlushRedis(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr()})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return rdb.FlushAll(ctx).Err()
}

// RestartKafka stops the broker and starts it again.
func (s Services) RestartKafka(ctx context.Context) error {
	if err := s.script(ctx, "kafka.sh", "stop"); err != nil {
		return err
	}
	return s.script(ctx, "kafka.sh", "start")
}
