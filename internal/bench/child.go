package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux fixes it
// at 100 ticks a second for user space.
const userHZ = 100

// Bounds of a child's start and stop.
const (
	childStartWait = 60 * time.Second
	childStopWait  = 30 * time.Second
)

// child is a sidecar running as a process of its own.
type child struct {
	cmd *exec.Cmd
	// exited is closed when the process ended, with waitErr set.
	exited  chan struct{}
	waitErr error
	topic   string
	log     string

	conn   *grpc.ClientConn
	es     eventstorepb.EventStoreServiceClient
	health healthpb.HealthClient
}

// startChild runs the sidecar binary bin with settings env (SIDECAR_*
// variables) on a free loopback port and waits until it serves. Its log
// goes to a file in logDir.
func startChild(ctx context.Context, bin string, env map[string]string, logDir string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env["SIDECAR_GRPC_ADDR"] = addr
	c := &child{exited: make(chan struct{}), topic: env["SIDECAR_KAFKA_TOPIC"]}
	c.log = filepath.Join(logDir, c.topic+".log")
	logf, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	c.cmd = exec.Command(bin)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIDECAR_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sidecar %s: %w", bin, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()

	c.conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.stop()
		return nil, err
	}
	c.es = eventstorepb.NewEventStoreServiceClient(c.conn)
	c.health = healthpb.NewHealthClient(c.conn)
	if err := c.waitServing(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *child) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, childStartWait)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		resp, err := c.health.Check(attempt, &healthpb.HealthCheckRequest{})
		cancelAttempt()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("sidecar exited at start (%v); its log is %s", c.cmd.ProcessState, c.log)
		case <-ctx.Done():
			return fmt.Errorf("sidecar not serving after %s (%v); its log is %s", childStartWait, err, c.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// usage returns the CPU time the child used so far, user and system, and
// its peak resident memory in bytes (VmHWM).
func (c *child) usage() (cpu time.Duration, peak int64, err error) {
	pid := c.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which may hold spaces: state is the
	// first, utime the 12th and stime the 13th.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	cpu = time.Duration(utime+stime) * time.Second / userHZ

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			peak = kb << 10
		}
	}
	return cpu, peak, nil
}

// stop ends the child with SIGTERM, as a pod's stop would, and kills it
// when its shutdown takes too long.
func (c *child) stop() error {
	if c.conn != nil {
		c.conn.Close()
	}
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(childStopWait):
			c.cmd.Process.Kill()
			<-c.exited
			return fmt.Errorf("sidecar did not stop within %s after SIGTERM; killed; its log is %s", childStopWait, c.log)
		}
	}
	if c.waitErr != nil {
		return fmt.Errorf("sidecar ended with %v; its log is %s", c.waitErr, c.log)
	}
	return nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
