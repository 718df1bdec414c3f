package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/incentives-platform/incentives/schemas"
)

// openAPIDocument is what GET /openapi.json answers: schemas/openapi.json
// with every schema it takes from a sibling file bundled in (see
// bundleOpenAPI), so a client needs nothing but this one document.
var openAPIDocument = sync.OnceValues(func() ([]byte, error) {
	return bundleOpenAPI(schemas.OpenAPI, map[string][]byte{"rule.schema.json": schemas.Rule})
})

// openAPI serves the OpenAPI document. It needs no authentication.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDocument()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	if _, err := w.Write(doc); err != nil {
		s.logger.DebugContext(r.Context(), "write openapi.json", "err", err)
	}
}

// bundleOpenAPI replaces every entry of components.schemas that is only
// {"$ref": "<file>"}, for a file in files, with that file's schema, so the
// document stands alone. The file's own references ("#/$defs/step") are
// rewritten to point at where it now lives ("#/components/schemas/Rule/$defs/step"),
// and its $id and $schema are dropped: tools that do not honour an embedded
// $id, as many OpenAPI tools do not, still resolve every reference, and the
// OpenAPI 3.1 base dialect is a superset of the 2020-12 schema it declares.
// Everything else is kept as written, in its order.
func bundleOpenAPI(doc []byte, files map[string][]byte) ([]byte, error) {
	root, err := decodeOrdered(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	top, ok := root.(jsonObject)
	if !ok {
		return nil, errors.New("openapi.json: not a JSON object")
	}
	components, _ := top.get("components").(jsonObject)
	schemaMap, _ := components.get("schemas").(jsonObject)
	for i, m := range schemaMap {
		s, ok := m.Value.(jsonObject)
		if !ok || len(s) != 1 || s[0].Key != "$ref" {
			continue
		}
		file, _ := s[0].Value.(string)
		content, ok := files[file]
		if !ok {
			continue
		}
		v, err := decodeOrdered(content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		embedded, ok := v.(jsonObject)
		if !ok {
			return nil, fmt.Errorf("%s: not a JSON object", file)
		}
		embedded = embedded.without("$id", "$schema")
		if err := rebaseRefs(embedded, "#/components/schemas/"+m.Key); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		schemaMap[i].Value = embedded
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// rebaseRefs rewrites every document-local $ref under v ("#" or "#/...") to
// the same place under base.
func rebaseRefs(v any, base string) error {
	switch v := v.(type) {
	case jsonObject:
		for i, m := range v {
			if ref, ok := m.Value.(string); ok && m.Key == "$ref" {
				switch {
				case ref == "#":
					v[i].Value = base
				case strings.HasPrefix(ref, "#/"):
					v[i].Value = base + ref[1:]
				default:
					return fmt.Errorf("cannot bundle the reference %q: only #/... references are supported", ref)
				}
				continue
			}
			if err := rebaseRefs(m.Value, base); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := rebaseRefs(child, base); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonObject is a JSON object that keeps its members in their order.
type jsonObject []jsonMember

type jsonMember struct {
	Key   string
	Value any
}

func (o jsonObject) get(key string) any {
	for _, m := range o {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

func (o jsonObject) without(keys ...string) jsonObject {
	out := make(jsonObject, 0, len(o))
	for _, m := range o {
		if !slices.Contains(keys, m.Key) {
			out = append(out, m)
		}
	}
	return out
}

// MarshalJSON writes the members in their order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(m.Key); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := enc.Encode(m.Value); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeOrdered decodes exactly one JSON value: objects as jsonObject,
// arrays as []any, numbers as json.Number (as written).
func decodeOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch delim {
	case '{':
		o := jsonObject{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, jsonMember{Key: key.(string), Value: v})
		}
		_, err = dec.Token() // '}'
		return o, err
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err = dec.Token() // ']'
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", delim)
}
