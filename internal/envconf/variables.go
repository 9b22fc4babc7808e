package envconf

import (
	"cmp"
	"encoding"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// variable is one variable that a configuration struct reads.
type variable struct {
	name      string
	typ       reflect.Type
	def       string
	delimiter string
	separator string
}

// variables lists the variables that go-envconfig reads into target, by
// name, following its rules: a struct field is read whole when it decodes
// itself (url.URL, for example) and is otherwise a group of fields whose
// keys get the field's prefix= option. A target that is no pointer to a
// struct has none; ProcessWith reports it.
func variables(target any, n naming) map[string]variable {
	vars := map[string]variable{}
	t := reflect.TypeOf(target)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return vars
	}
	walk(t.Elem(), "", ",", ":", n, map[reflect.Type]bool{}, vars)
	return vars
}

// walk adds the variables of the fields of t, whose keys get prefix, to
// vars; path holds the structs being walked.
func walk(t reflect.Type, prefix, delimiter, separator string, n naming,
	path map[reflect.Type]bool, vars map[string]variable,
) {
	if path[t] {
		return // a recursive struct, which ProcessWith refuses
	}
	path[t] = true
	defer delete(path, t)

	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		key, opts := parseTag(f.Tag.Get("env"))
		v := variable{
			name: n.name(prefix + key), typ: f.Type, def: opts["default"],
			delimiter: cmp.Or(opts["delimiter"], delimiter), separator: cmp.Or(opts["separator"], separator),
		}
		base := indirect(f.Type)
		if base.Kind() == reflect.Struct && !decodes(base) {
			walk(base, prefix+opts["prefix"], v.delimiter, v.separator, n, path, vars)
			continue
		}
		if key != "" {
			vars[v.name] = v
		}
	}
}

// parseTag splits an env tag into its key and its options, the value of
// default= being the rest of the tag. Commas escaped with a backslash are
// not understood; no tag here has one.
func parseTag(tag string) (key string, opts map[string]string) {
	key, rest, _ := strings.Cut(tag, ",")
	opts = map[string]string{}
	for rest != "" {
		seg, next, _ := strings.Cut(strings.TrimLeft(rest, " "), ",")
		name, value, ok := strings.Cut(seg, "=")
		name = strings.ToLower(name)
		if ok && name == "default" {
			opts[name] = strings.TrimLeft(rest, " ")[len("default="):]
			break
		}
		if ok {
			opts[name] = value
		}
		rest = next
	}
	return strings.TrimSpace(key), opts
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// decodes reports whether go-envconfig decodes a value of t with t's own
// method rather than by its kind.
func decodes(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	for _, i := range []reflect.Type{
		reflect.TypeFor[envconfig.DecoderCtx](), reflect.TypeFor[envconfig.Decoder](),
		reflect.TypeFor[encoding.TextUnmarshaler](), reflect.TypeFor[json.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](), reflect.TypeFor[gob.GobDecoder](),
	} {
		if p.Implements(i) {
			return true
		}
	}
	return false
}

// unknownIn returns the variables of env that begin with prefix and are
// not in vars, sorted.
func unknownIn(env Env, prefix string, vars map[string]variable) []string {
	if prefix == "" {
		return nil
	}
	var unknown []string
	for name := range env {
		if _, ok := vars[name]; strings.HasPrefix(name, prefix) && !ok {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// invalid is the error of a value of v that does not decode; isDefault
// says the value is v's default. The decoder's own error is kept only for
// types decoded by their own method, whose rules want states loosely.
func (v variable) invalid(value string, isDefault bool, err error) error {
	got := fmt.Sprintf("%q", value)
	if isDefault {
		got += " (its default)"
	}
	if decodes(indirect(v.typ)) {
		return fmt.Errorf("%s: must be %s, got %s: %w", v.name, want(v.typ, v), got, err)
	}
	return fmt.Errorf("%s: must be %s, got %s", v.name, want(v.typ, v), got)
}

// want says in words what a value of t must look like.
func want(t reflect.Type, v variable) string {
	t = indirect(t)
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 10s, 500ms or 1m30s"
	case t == reflect.TypeFor[url.URL]():
		return "a URL"
	case decodes(t):
		return "a valid " + t.String()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.Bits() == 64 {
			return "an integer"
		}
		return fmt.Sprintf("an integer from %d to %d", -1<<(t.Bits()-1), 1<<(t.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if t.Bits() == 64 {
			return "a whole number"
		}
		return fmt.Sprintf("a whole number from 0 to %d", 1<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return fmt.Sprintf("a list separated by %q, each %s", v.delimiter, want(t.Elem(), v))
	case reflect.Map:
		return fmt.Sprintf("key%svalue pairs separated by %q, each key %s and each value %s",
			v.separator, v.delimiter, want(t.Key(), v), want(t.Elem(), v))
	}
	return "a " + t.String()
}
