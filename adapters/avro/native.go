package avro

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/linkedin/goavro/v2"
)

// record reads the fields of a decoded record, remembering the first problem
// so mapping code can read every field and check once.
type record struct {
	m   map[string]any
	err error
}

func (r *record) fail(field, want string, got any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: field %s: want %s, got %T", ErrUndecodable, field, want, got)
	}
}

func (r *record) string(field string) string {
	s, ok := r.m[field].(string)
	if !ok {
		r.fail(field, "string", r.m[field])
	}
	return s
}

func (r *record) uuid(field string) uuid.UUID {
	s := r.string(field)
	id, err := uuid.Parse(s)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%w: field %s: %v", ErrUndecodable, field, err)
	}
	return id
}

func (r *record) time(field string) time.Time {
	t, ok := r.m[field].(time.Time)
	if !ok {
		r.fail(field, "timestamp", r.m[field])
	}
	return t.UTC()
}

func (r *record) record(field string) *record {
	m, ok := r.m[field].(map[string]any)
	if !ok {
		r.fail(field, "record", r.m[field])
	}
	return &record{m: m, err: r.err}
}

// optionalLong reads a ["null","long"] union.
func (r *record) optionalLong(field string) *int64 {
	switch v := r.m[field].(type) {
	case nil:
		return nil
	case map[string]any:
		if n, ok := v["long"].(int64); ok {
			return &n
		}
	}
	r.fail(field, "null or long", r.m[field])
	return nil
}

// optionalInt reads a ["null","int"] union; null reads as 0.
func (r *record) optionalInt(field string) int {
	switch v := r.m[field].(type) {
	case nil:
		return 0
	case map[string]any:
		if n, ok := v["int"].(int32); ok {
			return int(n)
		}
	}
	r.fail(field, "null or int", r.m[field])
	return 0
}

func nullableLong(n *int64) any {
	if n == nil {
		return nil
	}
	return goavro.Union("long", *n)
}

func nullableInt(n int) any {
	if n == 0 {
		return nil
	}
	return goavro.Union("int", int32(n))
}
