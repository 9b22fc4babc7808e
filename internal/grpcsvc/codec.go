package grpcsvc

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"

	// The standard protobuf codec, which this one wraps.
	_ "google.golang.org/grpc/encoding/proto"
)

// ServerCodec is the server option that encodes and decodes messages with
// the service's codec: the standard protobuf codec, except that a message
// in its wire form already is sent as it is, and that an append or a
// read whose strings are not valid UTF-8 is decoded anyway. The
// store's validation then refuses it as INVALID_ARGUMENT naming the field,
// where gRPC would answer INTERNAL with a decoding error that names none.
func ServerCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{std: encoding.GetCodecV2("proto")})
}

type codec struct{ std encoding.CodecV2 }

func (c codec) Name() string { return c.std.Name() }

// encoded is a message in its wire form already, which the codec sends as
// it is.
type encoded []byte

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return c.std.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.std.Unmarshal(data, v)
	if err == nil || !lenient(v) {
		return err
	}
	req := v.(proto.Message)
	// A request that is not even well-formed protobuf fails here too.
	proto.Reset(req)
	if lerr := unmarshalLenient(data.Materialize(), req.ProtoReflect()); lerr != nil {
		return err
	}
	return nil
}

// lenient reports whether v is a request whose strings the store validates
// itself, naming the field.
func lenient(v any) bool {
	switch v.(type) {
	case *eventstorepb.AppendRequest, *eventstorepb.GetStreamRequest, *eventstorepb.ReadStreamRequest:
		return true
	}
	return false
}

// unmarshalLenient decodes b into m as protobuf does, except that string
// fields, in m and in the messages it holds, take their bytes as they are,
// valid UTF-8 or not.
func unmarshalLenient(b []byte, m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		field := b[:n+vn]
		b = b[n+vn:]

		fd := fields.ByNumber(num)
		if fd != nil && typ == protowire.BytesType && !fd.IsMap() {
			v, _ := protowire.ConsumeBytes(field[n:])
			switch fd.Kind() {
			case protoreflect.StringKind:
				s := protoreflect.ValueOfString(string(v))
				if fd.IsList() {
					m.Mutable(fd).List().Append(s)
				} else {
					m.Set(fd, s)
				}
				continue
			case protoreflect.MessageKind:
				var sub protoreflect.Message
				if fd.IsList() {
					sub = m.Mutable(fd).List().AppendMutable().Message()
				} else {
					sub = m.Mutable(fd).Message()
				}
				if err := unmarshalLenient(v, sub); err != nil {
					return err
				}
				continue
			}
		}
		// Any other field as protobuf decodes it, merged into m.
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(field, m.Interface()); err != nil {
			return err
		}
	}
	return nil
}
