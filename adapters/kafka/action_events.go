package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/engine"
)

// Schema names (schemas/avro/<name>.avsc) of the engine's Kafka values.
const (
	ActionEventSchema    = "action-event"
	IncentiveEventSchema = "incentive-event"
)

// ErrInvalidActionEvent marks an ActionEvent that decoded but breaks the
// contract (a field out of its domain). Like avro.ErrUndecodable it never
// gets better on retry, so the engine sends it to the DLQ.
var ErrInvalidActionEvent = errors.New("invalid action event")

// actionCodePattern is the ActionEvent contract's action code (docs/topics.md).
var actionCodePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// EncodeActionEvent returns e as an Avro single-object ActionEvent. The
// payload written is e.RawPayload ("{}" when empty); eventTs keeps
// milliseconds, as the schema does.
func EncodeActionEvent(registry *avro.Registry, e engine.ActionEvent) ([]byte, error) {
	payload := string(e.RawPayload)
	if payload == "" {
		payload = "{}"
	}
	return registry.Encode(ActionEventSchema, map[string]any{
		"eventId":    e.EventID.String(),
		"tenantId":   e.TenantID.String(),
		"userId":     e.UserID,
		"actionCode": e.ActionCode,
		"eventTs":    e.EventTs,
		"payload":    payload,
	})
}

// DecodeActionEvent reads the value of a tenant-events record and checks it
// against the contract. key is the record's key; when it is set it must be
// the event's tenant id, or the event sits in another tenant's partition
// order. Errors wrap avro.ErrUndecodable (not an ActionEvent at all) or
// ErrInvalidActionEvent (a field out of its domain); both wrap ErrMalformed.
func DecodeActionEvent(registry *avro.Registry, key, value []byte) (engine.ActionEvent, error) {
	s, native, err := registry.Decode(value)
	if err != nil {
		return engine.ActionEvent{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if s.Name != ActionEventSchema {
		return engine.ActionEvent{}, fmt.Errorf("%w: %w: schema %s, want %s", ErrMalformed, avro.ErrUndecodable, s.Name, ActionEventSchema)
	}
	e, err := actionEventFromNative(native, key)
	if err != nil {
		return engine.ActionEvent{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e, nil
}

// actionEventFromNative validates every field and reports all problems at
// once, so an operator reading the DLQ sees everything wrong with a message.
func actionEventFromNative(m map[string]any, key []byte) (engine.ActionEvent, error) {
	var errs []error
	str := func(field string) string {
		s, ok := m[field].(string)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: want a string, got %T", field, m[field]))
		}
		return s
	}
	id := func(field string) uuid.UUID {
		s := str(field)
		u, err := parseUUID(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", field, s, err))
		}
		return u
	}
	e := engine.ActionEvent{
		EventID:    id("eventId"),
		TenantID:   id("tenantId"),
		UserID:     str("userId"),
		ActionCode: str("actionCode"),
	}
	if len(key) > 0 {
		if k, err := parseUUID(string(key)); err != nil || k != e.TenantID {
			errs = append(errs, fmt.Errorf("record key %q is not the tenantId %s", key, e.TenantID))
		}
	}
	// The user id and payload are stored as Postgres text and jsonb, which
	// refuse NUL and invalid UTF-8: such an event would fail its batch on
	// every redelivery, so it is refused here, into the DLQ.
	if problem := cohort.ValidateUserID(e.UserID); problem != "" {
		errs = append(errs, fmt.Errorf("userId %.64q %s", e.UserID, problem))
	}
	if !actionCodePattern.MatchString(e.ActionCode) {
		errs = append(errs, fmt.Errorf("actionCode %q does not match %s", e.ActionCode, actionCodePattern))
	}
	if e.EventID == uuid.Nil {
		errs = append(errs, errors.New("eventId is the nil UUID: every action needs an id of its own"))
	}
	if ts, ok := m["eventTs"].(time.Time); !ok {
		errs = append(errs, fmt.Errorf("eventTs: want a timestamp, got %T", m["eventTs"]))
	} else if e.EventTs = ts.UTC(); e.EventTs.Before(earliestEvent) || !e.EventTs.Before(latestEvent) {
		// Seconds or nanoseconds sent as milliseconds land here.
		errs = append(errs, fmt.Errorf("eventTs %s is not between %s and %s (milliseconds since the epoch)",
			e.EventTs.Format(time.RFC3339), earliestEvent.Format(time.DateOnly), latestEvent.Format(time.DateOnly)))
	}
	raw := str("payload")
	if !utf8.ValidString(raw) || strings.Contains(raw, `\u0000`) || loneSurrogate(raw) {
		errs = append(errs, errors.New("payload: not valid UTF-8, or holds a NUL (\\u0000) or an unpaired surrogate escape, which the action log cannot store"))
	}
	payload, err := decodePayload([]byte(raw))
	if err != nil {
		errs = append(errs, fmt.Errorf("payload: %w", err))
	} else if err := storableNumbers(payload); err != nil {
		errs = append(errs, fmt.Errorf("payload: %w", err))
	}
	e.Payload, e.RawPayload = payload, []byte(raw)
	if len(errs) > 0 {
		return engine.ActionEvent{}, fmt.Errorf("%w: %w", ErrInvalidActionEvent, errors.Join(errs...))
	}
	return e, nil
}

// The event times the action log takes: anything outside is a unit mistake,
// and PostgreSQL could not even make its partition.
var (
	earliestEvent = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	latestEvent   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// loneSurrogate reports whether raw holds a \u escape of a UTF-16 surrogate
// that is not half of a pair: encoding/json reads it as U+FFFD, but jsonb
// refuses the text.
func loneSurrogate(raw string) bool {
	for i := 0; i+6 <= len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, possibly a backslash
			continue
		}
		v, err := strconv.ParseUint(raw[i+2:i+6], 16, 16)
		switch {
		case err != nil:
		case v >= 0xD800 && v < 0xDC00: // high: a low must follow
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return true
			}
			lo, err := strconv.ParseUint(raw[i+8:i+12], 16, 16)
			if err != nil || lo < 0xDC00 || lo >= 0xE000 {
				return true
			}
			i += 11
			continue
		case v >= 0xDC00 && v < 0xE000:
			return true
		}
		i += 5
	}
	return false
}

// storableNumbers refuses numbers no float64 holds (1e400): jsonb's numeric
// would take some of them, but the conditions and amounts that read them
// could not, and no real payload carries one.
func storableNumbers(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := storableNumbers(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := storableNumbers(e); err != nil {
				return err
			}
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return fmt.Errorf("number %.32s is out of range", string(x))
		}
	}
	return nil
}

// parseUUID accepts the canonical 36-character form only: uuid.Parse also
// takes braces, URNs and bare hex, which other systems would store as
// different strings for the same id.
func parseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errors.New("not a canonical uuid")
	}
	return uuid.Parse(s)
}

// decodePayload reads a JSON object, numbers as json.Number so amounts keep
// every digit they were sent with (a float64 would round 0.1 + 0.2).
func decodePayload(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return nil, errors.New("trailing data after the JSON object")
	}
	return obj, nil
}
