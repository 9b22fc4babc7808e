package kafka

import (
	"github.com/twmb/franz-go/pkg/kgo"
)

// Trace context headers, W3C Trace Context's own names. An append written
// while tracing is on carries its trace context in them, beside the es-*
// headers; decoding ignores them, and a parked record keeps them.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// HeaderCarrier reads and writes the headers of a record for an
// OpenTelemetry propagator (it is a propagation.TextMapCarrier).
type HeaderCarrier struct{ R *kgo.Record }

// Get returns the value of the first header named key, "" for none.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range c.R.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the header named key, or adds it.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range c.R.Headers {
		if h.Key == key {
			c.R.Headers[i].Value = []byte(value)
			return
		}
	}
	c.R.Headers = append(c.R.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys returns the names of the record's headers.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(c.R.Headers))
	for i, h := range c.R.Headers {
		keys[i] = h.Key
	}
	return keys
}
