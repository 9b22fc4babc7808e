package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// sidecar is one sidecar binary run as a child process, restarted on the
// same address so that its clients reconnect.
type sidecar struct {
	name string
	bin  string
	addr string
	env  []string
	logf *os.File

	conn   *grpc.ClientConn
	client eventstorepb.EventStoreServiceClient

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	// killed is set while the process is being killed on purpose.
	killed bool
	// crashes counts exits nobody asked for.
	crashes int
}

// newSidecar prepares a sidecar listening on a free loopback port; its
// output goes to logPath. env holds SIDECAR_* settings.
func newSidecar(name, bin, logPath string, env []string) (*sidecar, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Reconnect soon after a restart; the default backoff grows to
		// two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2,
				MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		logf.Close()
		return nil, err
	}
	env = append(env, "SIDECAR_GRPC_ADDR="+addr)
	return &sidecar{name: name, bin: bin, addr: addr, env: env, logf: logf, conn: conn,
		client: eventstorepb.NewEventStoreServiceClient(conn)}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts the process; it does not wait for it to serve.
func (s *sidecar) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.logf, "---- start %s at %s\n", s.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sidecar %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.killed = cmd, exited, false
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		if !s.killed {
			s.crashes++
			fmt.Fprintf(s.logf, "---- %s exited on its own: %v\n", s.name, err)
		}
		s.mu.Unlock()
		close(exited)
	}()
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *sidecar) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.killed = true
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// running reports whether the process has not exited.
func (s *sidecar) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// waitServing waits until the sidecar's health service says SERVING.
func (s *sidecar) waitServing(ctx context.Context) error {
	hc := healthpb.NewHealthClient(s.conn)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if !s.running() {
			return errors.New("sidecar " + s.name + " is not running")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sidecar %s not serving: %w (last check: %v)", s.name, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// close kills the process and releases the client and the log file.
func (s *sidecar) close() {
	s.kill()
	s.conn.Close()
	s.logf.Close()
}
