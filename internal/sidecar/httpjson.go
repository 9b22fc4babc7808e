package sidecar

import (
	"encoding/json"
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestJSONCodec is vanguard's JSON codec for requests, except that:
//   - a request it cannot decode is INVALID_ARGUMENT, naming the field,
//     where vanguard answers UNKNOWN;
//   - an enum value given by a name the enum does not have is refused,
//     where vanguard, which ignores unknown fields so that older sidecars
//     take requests of newer clients, ignores it too.
//
// The transcoder decodes only requests with it: the gRPC side speaks
// protobuf.
type requestJSONCodec struct {
	*vanguard.JSONCodec
	strict protojson.UnmarshalOptions
}

func newRequestJSONCodec(res vanguard.TypeResolver) vanguard.Codec {
	c := vanguard.NewJSONCodec(res)
	strict := c.UnmarshalOptions
	strict.DiscardUnknown = false
	return requestJSONCodec{JSONCodec: c, strict: strict}
}

// Unmarshal decodes a JSON request. A request with only fields and values
// the contract knows decodes once; any other is decoded again ignoring
// unknown fields, and refused if an enum's value is what was unknown.
func (c requestJSONCodec) Unmarshal(data []byte, msg proto.Message) error {
	if c.strict.Unmarshal(data, msg) == nil {
		return nil
	}
	proto.Reset(msg)
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	if err := unknownEnumName(msg.ProtoReflect().Descriptor(), data, ""); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

// unknownEnumName finds, in the JSON object data of a message md, an enum
// field whose value is a name its enum does not have. Numbers are left to
// protobuf, which keeps unknown ones as open enums do.
func unknownEnumName(md protoreflect.MessageDescriptor, data []byte, prefix string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		// Not an object (null, for a message field): protobuf decoded it.
		return nil
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsMap() || (fd.Kind() != protoreflect.EnumKind && fd.Kind() != protoreflect.MessageKind) {
			continue
		}
		raw, ok := obj[fd.JSONName()]
		if !ok {
			if raw, ok = obj[string(fd.Name())]; !ok {
				continue
			}
		}
		values := []json.RawMessage{raw}
		if fd.IsList() {
			values = nil
			_ = json.Unmarshal(raw, &values)
		}
		for j, v := range values {
			name := prefix + string(fd.Name())
			if fd.IsList() {
				name = fmt.Sprintf("%s[%d]", name, j)
			}
			if err := unknownEnumValue(fd, v, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func unknownEnumValue(fd protoreflect.FieldDescriptor, v json.RawMessage, name string) error {
	if fd.Kind() == protoreflect.MessageKind {
		return unknownEnumName(fd.Message(), v, name+".")
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil
	}
	enum := fd.Enum()
	if enum.Values().ByName(protoreflect.Name(s)) != nil {
		return nil
	}
	names := enum.Values()
	known := make([]string, names.Len())
	for i := range names.Len() {
		known[i] = string(names.Get(i).Name())
	}
	return fmt.Errorf("%s: unknown value %q; one of %v, or its number", name, s, known)
}
