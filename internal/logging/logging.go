// Package logging builds the slog loggers of the projector and the push
// service, the same way the sidecar builds its own: JSON in production,
// text on a terminal.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// New returns a logger writing to w at level (debug, info, warn or error)
// in format: json, text, or auto (text when w is a terminal, else json).
func New(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: must be debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var text bool
	switch format {
	case "text":
		text = true
	case "json":
	case "auto":
		f, ok := w.(*os.File)
		text = ok && term.IsTerminal(int(f.Fd()))
	default:
		return nil, fmt.Errorf("log format %q: must be json, text or auto", format)
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
