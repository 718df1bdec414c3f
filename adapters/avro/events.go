package avro

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/incentives-platform/incentives/domain"
)

// EventMapping is how one domain event type meets its schema: Type is both the
// event's EventType and the schema's name.
type EventMapping struct {
	Type string
	// ToNative returns the event in goavro's native form.
	ToNative func(domain.Event) (map[string]any, error)
	// FromNative rebuilds the event; errors wrap ErrUndecodable.
	FromNative func(map[string]any) (domain.Event, error)
}

// EventCodec encodes domain events to Avro (single-object binary for Kafka,
// Avro JSON for the event store's payload column) and back. It is immutable
// and safe for concurrent use.
type EventCodec struct {
	registry *Registry
	byType   map[string]EventMapping
}

// NewEventCodec returns a codec for the given mappings. Every mapping must
// have a schema of the same name in the registry.
func NewEventCodec(registry *Registry, mappings ...EventMapping) (*EventCodec, error) {
	c := &EventCodec{registry: registry, byType: map[string]EventMapping{}}
	var errs []error
	for _, m := range mappings {
		if _, ok := registry.Schema(m.Type); !ok {
			errs = append(errs, fmt.Errorf("event type %s has no schema %s.avsc", m.Type, m.Type))
		}
		if _, dup := c.byType[m.Type]; dup {
			errs = append(errs, fmt.Errorf("event type %s is mapped twice", m.Type))
		}
		c.byType[m.Type] = m
	}
	return c, errors.Join(errs...)
}

// Types returns the event types the codec knows.
func (c *EventCodec) Types() []string {
	types := make([]string, 0, len(c.byType))
	for t := range c.byType {
		types = append(types, t)
	}
	return types
}

func (c *EventCodec) mapping(eventType string) (EventMapping, *Schema, error) {
	m, ok := c.byType[eventType]
	if !ok {
		return EventMapping{}, nil, fmt.Errorf("no avro mapping for event type %s", eventType)
	}
	s, _ := c.registry.Schema(eventType)
	return m, s, nil
}

// EncodeBinary returns e single-object encoded.
func (c *EventCodec) EncodeBinary(e domain.Event) ([]byte, error) {
	m, s, err := c.mapping(e.EventType())
	if err != nil {
		return nil, err
	}
	native, err := m.ToNative(e)
	if err != nil {
		return nil, err
	}
	return s.AppendSingleObject(nil, native)
}

// DecodeBinary reads a single-object encoded event; errors wrap ErrUndecodable.
func (c *EventCodec) DecodeBinary(data []byte) (domain.Event, error) {
	s, native, err := c.registry.Decode(data)
	if err != nil {
		return nil, err
	}
	m, ok := c.byType[s.Name]
	if !ok {
		return nil, fmt.Errorf("%w: schema %s is not a domain event", ErrUndecodable, s.Name)
	}
	return m.FromNative(native)
}

// EncodeJSON returns e in Avro's JSON encoding and the schema version from its
// type name ("tenant.created.v1" is version 1).
func (c *EventCodec) EncodeJSON(e domain.Event) (int, []byte, error) {
	m, s, err := c.mapping(e.EventType())
	if err != nil {
		return 0, nil, err
	}
	native, err := m.ToNative(e)
	if err != nil {
		return 0, nil, err
	}
	b, err := s.EncodeJSON(native)
	return SchemaVersion(e.EventType()), b, err
}

// DecodeJSON reads an event of eventType in Avro's JSON encoding; errors wrap
// ErrUndecodable.
func (c *EventCodec) DecodeJSON(eventType string, data []byte) (domain.Event, error) {
	m, s, err := c.mapping(eventType)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	native, err := s.DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	return m.FromNative(native)
}

// SchemaVersion returns the version suffix of an event type name ("x.y.v3" is
// 3), or 1 for a name without one.
func SchemaVersion(eventType string) int {
	i := strings.LastIndex(eventType, ".v")
	if i < 0 {
		return 1
	}
	v, err := strconv.Atoi(eventType[i+2:])
	if err != nil || v < 1 {
		return 1
	}
	return v
}
