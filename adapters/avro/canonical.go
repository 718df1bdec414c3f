package avro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

var primitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// CanonicalForm returns the Parsing Canonical Form of an Avro schema as the
// specification defines it (and Java's SchemaNormalization.toParsingForm
// writes it): primitives in their simple form, full names, only the
// attributes that affect parsing (name, type, fields, symbols, items, values,
// size) in that order, no logical types, no whitespace.
func CanonicalForm(schema []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	var s any
	if err := dec.Decode(&s); err != nil {
		return "", fmt.Errorf("parse schema: %w", err)
	}
	var b strings.Builder
	if err := writeCanonical(&b, s, "", map[string]bool{}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// fullName resolves name in the enclosing namespace ns.
func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func writeCanonical(b *strings.Builder, s any, ns string, seen map[string]bool) error {
	switch s := s.(type) {
	case string:
		if primitives[s] {
			writeString(b, s)
		} else {
			writeString(b, fullName(s, ns))
		}
		return nil
	case []any:
		b.WriteByte('[')
		for i, branch := range s {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, branch, ns, seen); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case map[string]any:
		return writeComplex(b, s, ns, seen)
	default:
		return fmt.Errorf("unexpected schema element %v", s)
	}
}

func writeComplex(b *strings.Builder, s map[string]any, ns string, seen map[string]bool) error {
	typ, ok := s["type"].(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the wrapper adds nothing to parsing.
		if s["type"] == nil {
			return fmt.Errorf("schema object without type: %v", s)
		}
		return writeCanonical(b, s["type"], ns, seen)
	}
	switch typ {
	case "record", "error", "enum", "fixed":
		name, _ := s["name"].(string)
		if name == "" {
			return fmt.Errorf("%s without a name", typ)
		}
		if explicit, ok := s["namespace"].(string); ok && !strings.Contains(name, ".") {
			ns = explicit
		}
		full := fullName(name, ns)
		if i := strings.LastIndexByte(full, '.'); i >= 0 {
			ns = full[:i]
		} else {
			ns = ""
		}
		if seen[full] {
			writeString(b, full)
			return nil
		}
		seen[full] = true
		b.WriteString(`{"name":`)
		writeString(b, full)
		b.WriteString(`,"type":`)
		switch typ {
		case "enum":
			writeString(b, "enum")
			b.WriteString(`,"symbols":[`)
			symbols, _ := s["symbols"].([]any)
			for i, sym := range symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				str, _ := sym.(string)
				writeString(b, str)
			}
			b.WriteByte(']')
		case "fixed":
			writeString(b, "fixed")
			size, err := strconv.ParseInt(fmt.Sprint(s["size"]), 10, 64)
			if err != nil {
				return fmt.Errorf("fixed %s: bad size %v", full, s["size"])
			}
			b.WriteString(`,"size":` + strconv.FormatInt(size, 10))
		default:
			writeString(b, "record")
			b.WriteString(`,"fields":[`)
			fields, _ := s["fields"].([]any)
			for i, f := range fields {
				field, ok := f.(map[string]any)
				if !ok {
					return fmt.Errorf("record %s: field %d is not an object", full, i)
				}
				if i > 0 {
					b.WriteByte(',')
				}
				fname, _ := field["name"].(string)
				b.WriteString(`{"name":`)
				writeString(b, fname)
				b.WriteString(`,"type":`)
				if err := writeCanonical(b, field["type"], ns, seen); err != nil {
					return fmt.Errorf("record %s field %s: %w", full, fname, err)
				}
				b.WriteByte('}')
			}
			b.WriteByte(']')
		}
		b.WriteByte('}')
		return nil
	case "array":
		b.WriteString(`{"type":"array","items":`)
		if err := writeCanonical(b, s["items"], ns, seen); err != nil {
			return err
		}
		b.WriteByte('}')
		return nil
	case "map":
		b.WriteString(`{"type":"map","values":`)
		if err := writeCanonical(b, s["values"], ns, seen); err != nil {
			return err
		}
		b.WriteByte('}')
		return nil
	default:
		// A primitive with attributes (a logical type, say) or a named reference.
		return writeCanonical(b, typ, ns, seen)
	}
}

// writeString writes s as a JSON string with non-ASCII characters as UTF-8,
// never as \u escapes ([STRINGS] in the specification).
func writeString(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}
