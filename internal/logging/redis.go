package logging

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteRedis sends go-redis's own log lines (a pool that cannot dial, a
// cluster that refreshes its slots), which it otherwise prints as plain
// text to stderr, to log as warnings. go-redis has one logger per process.
func RouteRedis(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
