package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
)

// Headers of every message on an ic.domain.<aggregate> topic. They are part of
// the published contract (docs/topics.md): add, never rename.
const (
	HeaderEventType     = "event-type"
	HeaderAggregate     = "aggregate"
	HeaderAggregateID   = "aggregate-id"
	HeaderStreamVersion = "stream-version"
	HeaderPosition      = "position"
	HeaderTenantID      = "tenant-id"
	HeaderCorrelationID = "correlation-id"
	HeaderCausationID   = "causation-id"
	HeaderActor         = "actor"
	HeaderRecordedAt    = "recorded-at"
	HeaderContentType   = "content-type"

	// ContentTypeAvro marks a value in Avro single-object encoding.
	ContentTypeAvro = "application/vnd.apache.avro+binary"
)

// ErrMalformed marks a message that can never be processed (bad headers, an
// undecodable value). Consumers send such messages to their DLQ instead of
// retrying them.
var ErrMalformed = errors.New("malformed message")

// EventBinaryCodec encodes events in Avro single-object encoding and back.
type EventBinaryCodec interface {
	EncodeBinary(domain.Event) ([]byte, error)
	DecodeBinary([]byte) (domain.Event, error)
}

// DomainMessages maps recorded domain events to Kafka messages and back: the
// value is the event, Avro single-object encoded; the key is the aggregate id,
// so a stream's events stay in order in one partition; the headers carry the
// envelope. The message UUID is the event id, the same on every copy.
type DomainMessages struct {
	Codec EventBinaryCodec
}

// OutboxMessage returns the topic and message of rec.
func (d DomainMessages) OutboxMessage(rec domain.RecordedEvent) (string, *message.Message, error) {
	payload, err := d.Codec.EncodeBinary(rec.Event)
	if err != nil {
		return "", nil, err
	}
	msg := message.NewMessage(rec.EventID.String(), payload)
	SetKey(msg, rec.Stream.ID.String())
	md := msg.Metadata
	md.Set(HeaderContentType, ContentTypeAvro)
	md.Set(HeaderEventType, rec.Event.EventType())
	md.Set(HeaderAggregate, rec.Stream.Aggregate)
	md.Set(HeaderAggregateID, rec.Stream.ID.String())
	md.Set(HeaderStreamVersion, strconv.FormatInt(rec.Version, 10))
	md.Set(HeaderPosition, strconv.FormatInt(rec.Position, 10))
	md.Set(HeaderRecordedAt, rec.RecordedAt.UTC().Format(time.RFC3339Nano))
	if rec.Metadata.TenantID != uuid.Nil {
		md.Set(HeaderTenantID, rec.Metadata.TenantID.String())
	}
	for k, v := range map[string]string{
		HeaderCorrelationID: rec.Metadata.CorrelationID,
		HeaderCausationID:   rec.Metadata.CausationID,
		HeaderActor:         rec.Metadata.Actor,
	} {
		if v != "" {
			md.Set(k, v)
		}
	}
	return DomainTopic(rec.Stream.Aggregate), msg, nil
}

// Decode rebuilds the recorded event a domain message carries. Errors wrap
// ErrMalformed.
func (d DomainMessages) Decode(msg *message.Message) (domain.RecordedEvent, error) {
	md := msg.Metadata
	var errs []error
	parseInt := func(h string) int64 {
		n, err := strconv.ParseInt(md.Get(h), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %q", h, md.Get(h)))
		}
		return n
	}
	parseUUID := func(h, v string, optional bool) uuid.UUID {
		if v == "" && optional {
			return uuid.Nil
		}
		id, err := uuid.Parse(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %q", h, v))
		}
		return id
	}
	rec := domain.RecordedEvent{
		EventID:  parseUUID("message uuid", msg.UUID, false),
		Stream:   domain.StreamID{Aggregate: md.Get(HeaderAggregate), ID: parseUUID(HeaderAggregateID, md.Get(HeaderAggregateID), false)},
		Version:  parseInt(HeaderStreamVersion),
		Position: parseInt(HeaderPosition),
		Metadata: domain.Metadata{
			TenantID:      parseUUID(HeaderTenantID, md.Get(HeaderTenantID), true),
			CorrelationID: md.Get(HeaderCorrelationID),
			CausationID:   md.Get(HeaderCausationID),
			Actor:         md.Get(HeaderActor),
		},
	}
	if rec.Stream.Aggregate == "" {
		errs = append(errs, fmt.Errorf("header %s missing", HeaderAggregate))
	}
	if at, err := time.Parse(time.RFC3339Nano, md.Get(HeaderRecordedAt)); err == nil {
		rec.RecordedAt = at
	} else {
		errs = append(errs, fmt.Errorf("header %s: %q", HeaderRecordedAt, md.Get(HeaderRecordedAt)))
	}
	if len(errs) > 0 {
		return domain.RecordedEvent{}, fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	e, err := d.Codec.DecodeBinary(msg.Payload)
	if err != nil {
		return domain.RecordedEvent{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.EventType() != md.Get(HeaderEventType) {
		return domain.RecordedEvent{}, fmt.Errorf("%w: header %s %q but the value is a %s", ErrMalformed, HeaderEventType, md.Get(HeaderEventType), e.EventType())
	}
	rec.Event = e
	return rec, nil
}
