package sidecar

import (
	"context"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// NewLogger returns the sidecar's logger: JSON, or text on a terminal when
// the format is auto, at SIDECAR_LOG_LEVEL, with the configuration's
// secrets replaced wherever they would show.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		f, ok := w.(*os.File)
		text = ok && term.IsTerminal(int(f.Fd()))
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if text {
		h = slog.NewTextHandler(w, opts)
	}
	if len(cfg.secrets()) > 0 {
		h = redactingHandler{h, cfg}
	}
	return slog.New(h)
}

// franzLogger is where franz-go's own log lines go, tagged with
// component=franz-go by the kafka package. At info franz-go reports every
// connection, metadata refresh and produce-ID step, which drowns the
// sidecar's lifecycle: only its warnings and errors pass, unless
// SIDECAR_LOG_LEVEL is debug, which lets everything through. franz-go's
// levels map one to one onto slog's (kslog), and franz-go asks for the
// level once per line, so what is dropped is never formatted.
func franzLogger(cfg Config, log *slog.Logger) *slog.Logger {
	if cfg.LogLevel == "debug" {
		return log
	}
	return slog.New(levelFloor{log.Handler(), slog.LevelWarn})
}

// levelFloor passes to its handler only records at min or above.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
