package sidecar

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// keepaliveOptions let clients ping as often as every 10 seconds, also on
// a connection without calls. Clients ping to notice a dead subscription;
// under grpc-go's default policy (one ping per 5 minutes, none while idle)
// the server answers such pings by closing the connection, which makes
// every subscription on it reconnect and redeliver.
func keepaliveOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
		}),
	}
}
