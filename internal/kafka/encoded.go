package kafka

import (
	"fmt"
	"unicode/utf8"

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
// them. It is Decode for a caller that only forwards events: it refuses
// what Decode refuses (broken framing, strings that are not UTF-8, in the
// record or in any event), and returns either every event of the record or
// an error, never some of them. It returns ErrNotAnAppend for foreign
// records.
func EncodedEvents(r *kgo.Record) ([][]byte, error) {
	if !isAppend(r) {
		return nil, ErrNotAnAppend
	}
	bad := func(what string) error {
		return fmt.Errorf("decode append at partition %d offset %d: %s", r.Partition, r.Offset, what)
	}
	if err := checkWire(r.Value, appendDescriptor); err != nil {
		return nil, bad(err.Error())
	}
	// Zeros too: an event's bytes could hold a partition or offset of
	// their own, and the last value of a field is the one decoded.
	var stamp []byte
	stamp = protowire.AppendTag(stamp, fieldEventPartition, protowire.VarintType)
	stamp = protowire.AppendVarint(stamp, uint64(r.Partition))
	stamp = protowire.AppendTag(stamp, fieldEventOffset, protowire.VarintType)
	stamp = protowire.AppendVarint(stamp, uint64(r.Offset))
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
			e := make([]byte, 0, len(v)+len(stamp))
			events = append(events, append(append(e, v...), stamp...))
		}
		b = b[n+vn:]
	}
	return events, nil
}

var appendDescriptor = (&eventstorepb.RecordedAppend{}).ProtoReflect().Descriptor()

// checkWire checks b as protobuf decoding into a message of md would: the
// framing of every field, and in the string fields of the message and of
// the messages it holds, valid UTF-8. It is what protobuf's decoder
// refuses without building the message.
func checkWire(b []byte, md protoreflect.MessageDescriptor) error {
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		if fd := fields.ByNumber(num); fd != nil && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n : n+vn])
			switch fd.Kind() {
			case protoreflect.StringKind:
				if !utf8.Valid(v) {
					return fmt.Errorf("%s is not valid UTF-8", fd.FullName())
				}
			case protoreflect.MessageKind:
				if err := checkWire(v, fd.Message()); err != nil {
					return err
				}
			}
		}
		b = b[n+vn:]
	}
	return nil
}
