package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Field numbers of the wire forms that EncodedEvents reads and writes.
var (
	fieldAppendEvents   = fieldNumber(&eventstorepb.RecordedAppend{}, "events")
	fieldEventPartition = fieldNumber(&eventstorepb.Event{}, "partition")
	fieldEventOffset    = fieldNumber(&eventstorepb.Event{}, "offset")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("kafka: %s has no field %s", m.ProtoReflect().Descriptor().FullName(), name))
	}
	return fd.Number()
}

// EncodedEvents returns the events of an append record in the wire form of
// the eventstore.Event a subscriber receives, without decoding them: each
// event's bytes as the record holds them, followed by the record's
// partition and offset, which protobuf decoders take over any value before
// them. It is Decode for a caller that only forwards events. It checks the
// framing of the record and of every event, and returns either every event
// of the record or an error, never some of them. It returns ErrNotAnAppend
// for foreign records.
func EncodedEvents(r *kgo.Record) ([][]byte, error) {
	if !isAppend(r) {
		return nil, ErrNotAnAppend
	}
	bad := func(what string) error {
		return fmt.Errorf("decode append at partition %d offset %d: %s", r.Partition, r.Offset, what)
	}
	var stamp []byte
	if r.Partition != 0 {
		stamp = protowire.AppendTag(stamp, fieldEventPartition, protowire.VarintType)
		stamp = protowire.AppendVarint(stamp, uint64(r.Partition))
	}
	if r.Offset != 0 {
		stamp = protowire.AppendTag(stamp, fieldEventOffset, protowire.VarintType)
		stamp = protowire.AppendVarint(stamp, uint64(r.Offset))
	}
	var events [][]byte
	for b := r.Value; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, bad(protowire.ParseError(n).Error())
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return nil, bad(protowire.ParseError(vn).Error())
		}
		if num == fieldAppendEvents {
			if typ != protowire.BytesType {
				return nil, bad("events is not a message")
			}
			v, _ := protowire.ConsumeBytes(b[n : n+vn])
			if err := checkFraming(v); err != nil {
				return nil, bad("event: " + err.Error())
			}
			e := make([]byte, 0, len(v)+len(stamp))
			events = append(events, append(append(e, v...), stamp...))
		}
		b = b[n+vn:]
	}
	return events, nil
}

// checkFraming reports whether b is a sequence of well-formed protobuf
// fields.
func checkFraming(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		b = b[n+vn:]
	}
	return nil
}
