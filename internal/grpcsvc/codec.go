package grpcsvc

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"

	// The standard protobuf codec, which this one wraps.
	_ "google.golang.org/grpc/encoding/proto"
)

// ServerOptions are the server options of the service's codec: the
// standard protobuf codec, except that a message in its wire form already
// is sent as it is, that an append or a read whose strings are not valid
// UTF-8 is decoded anyway, and that any other request that does not decode
// is refused as INVALID_ARGUMENT. The store's validation refuses the
// leniently decoded requests, naming the field. gRPC itself answers every
// decoding failure INTERNAL, and ends a stream whose message does not
// decode as if the client had left.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{std: encoding.GetCodecV2("proto")}),
		grpc.ChainUnaryInterceptor(refuseUndecodable),
		grpc.ChainStreamInterceptor(refuseUndecodableStream),
	}
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

// Unmarshal decodes a request. A request that does not decode is not
// an error here, where gRPC would make it INTERNAL: it is left empty and
// marked, and the interceptors refuse it.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.std.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	req, ok := v.(proto.Message)
	if !ok {
		return err
	}
	// Well-formed protobuf whose strings are not all UTF-8 decodes
	// leniently. The store refuses appends and reads itself, naming the
	// field; any other request is refused here, naming it too.
	proto.Reset(req)
	if unmarshalLenient(data.Materialize(), req.ProtoReflect()) == nil {
		if lenient(v) {
			return nil
		}
		if field := invalidUTF8(req.ProtoReflect(), ""); field != "" {
			err = fmt.Errorf("%s: not valid UTF-8", field)
		}
	}
	proto.Reset(req)
	markUndecodable(req, err)
	return nil
}

// invalidUTF8 is the path, below prefix, of the first string field of m
// that is not valid UTF-8, empty when all are.
func invalidUTF8(m protoreflect.Message, prefix string) string {
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			// The contract's requests have no maps.
		case fd.IsList():
			list := v.List()
			for i := range list.Len() {
				if found = invalidValue(fd, list.Get(i), fmt.Sprintf("%s[%d]", name, i)); found != "" {
					break
				}
			}
		default:
			found = invalidValue(fd, v, name)
		}
		return found == ""
	})
	return found
}

func invalidValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return name
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return invalidUTF8(v.Message(), name+".")
	}
	return ""
}

// undecodableField is the field number under which a request that did not
// decode carries the decoding error, as an unknown field of the emptied
// message: the highest number protobuf allows, which no message of the
// contract uses.
const undecodableField = protowire.MaxValidNumber

func markUndecodable(m proto.Message, err error) {
	b := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendString(b, err.Error()))
}

// undecodable is the INVALID_ARGUMENT of a request the codec marked, nil
// for any other.
func undecodable(v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return nil
	}
	unknown := m.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return nil
	}
	num, typ, n := protowire.ConsumeTag(unknown)
	if n < 0 || num != undecodableField || typ != protowire.BytesType {
		return nil
	}
	reason, _ := protowire.ConsumeString(unknown[n:])
	return status.Errorf(codes.InvalidArgument, "request: not a valid %s in protobuf: %s",
		m.ProtoReflect().Descriptor().FullName(), reason)
}

func refuseUndecodable(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := undecodable(req); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

// refuseUndecodableStream makes a client message of a stream that does
// not decode a receive error of INVALID_ARGUMENT, which the handler ends
// the stream with.
func refuseUndecodableStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, refusingStream{ss})
}

type refusingStream struct{ grpc.ServerStream }

func (s refusingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return undecodable(m)
}

// refused reports whether err, from a stream's Recv, is a client message
// that did not decode rather than the client leaving.
func refused(err error) bool { return status.Code(err) == codes.InvalidArgument }

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
