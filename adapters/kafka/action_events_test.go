package kafka_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/domain/engine"
)

func registry(t testing.TB) *avro.Registry {
	t.Helper()
	r, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// actionEvent returns a valid event whose payload is raw.
func actionEvent(tenant uuid.UUID, user, action, raw string) engine.ActionEvent {
	var payload map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&payload) // tests of invalid payloads send raw as it is
	return engine.ActionEvent{EventID: uuid.New(), TenantID: tenant, UserID: user, ActionCode: action,
		EventTs: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Add(time.Duration(len(user)) * time.Millisecond),
		Payload: payload, RawPayload: []byte(raw)}
}

func TestActionEventRoundTripKeepsNumbersExact(t *testing.T) {
	reg := registry(t)
	// An escaped surrogate pair (an emoji) and an escaped backslash before
	// a u are ordinary JSON, not the lone surrogates the log refuses.
	e := actionEvent(uuid.New(), "user-1", "PURCHASE", `{"amount": 1234.5678901234567890, "items": 3, "channel": "app", "nested": {"a": [1, 2]}, "note": "\ud83d\ude00 \\ud800"}`)
	value, err := kafka.EncodeActionEvent(reg, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kafka.DecodeActionEvent(reg, []byte(e.TenantID.String()), value)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("DecodeActionEvent = %+v\nwant %+v", got, e)
	}
	if amount := got.Payload["amount"]; amount != json.Number("1234.5678901234567890") {
		t.Fatalf("amount = %#v, want every digit as a json.Number", amount)
	}
	// Without a key the tenant is not checked against it.
	if _, err := kafka.DecodeActionEvent(reg, nil, value); err != nil {
		t.Fatalf("no key: %v", err)
	}
}

func TestDecodeActionEventRefusesWhatBreaksTheContract(t *testing.T) {
	reg := registry(t)
	tenant := uuid.New()
	encode := func(mutate func(m map[string]any)) []byte {
		m := map[string]any{"eventId": uuid.NewString(), "tenantId": tenant.String(), "userId": "u1",
			"actionCode": "LOGIN", "eventTs": time.Now(), "payload": `{"channel":"web"}`}
		mutate(m)
		v, err := reg.Encode(kafka.ActionEventSchema, m)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	incentive, err := kafka.EncodeIncentiveEvent(reg, engine.Incentive{ID: uuid.New(), TenantID: tenant, UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(tenant.String())
	for _, tc := range []struct {
		name  string
		key   []byte
		value []byte
		want  error
		says  string
	}{
		{"garbage", key, []byte("not avro at all"), avro.ErrUndecodable, "single-object"},
		{"truncated body", key, encode(func(map[string]any) {})[:14], avro.ErrUndecodable, "action-event"},
		{"another schema", key, incentive, avro.ErrUndecodable, "incentive-event"},
		{"event id not a uuid", key, encode(func(m map[string]any) { m["eventId"] = "42" }), kafka.ErrInvalidActionEvent, "eventId"},
		{"braced uuid", key, encode(func(m map[string]any) { m["eventId"] = "{" + uuid.NewString() + "}" }), kafka.ErrInvalidActionEvent, "eventId"},
		{"tenant not a uuid", nil, encode(func(m map[string]any) { m["tenantId"] = "acme" }), kafka.ErrInvalidActionEvent, "tenantId"},
		{"key of another tenant", []byte(uuid.NewString()), encode(func(map[string]any) {}), kafka.ErrInvalidActionEvent, "record key"},
		{"key not a uuid", []byte("acme"), encode(func(map[string]any) {}), kafka.ErrInvalidActionEvent, "record key"},
		{"empty user", key, encode(func(m map[string]any) { m["userId"] = "" }), kafka.ErrInvalidActionEvent, "must not be empty"},
		{"long user", key, encode(func(m map[string]any) { m["userId"] = strings.Repeat("u", 129) }), kafka.ErrInvalidActionEvent, "at most 128 bytes"},
		{"NUL in the user", key, encode(func(m map[string]any) { m["userId"] = "u\x00" }), kafka.ErrInvalidActionEvent, "control characters"},
		{"NUL in the payload", key, encode(func(m map[string]any) { m["payload"] = `{"note":"a\u0000b"}` }), kafka.ErrInvalidActionEvent, "NUL"},
		{"nil event id", key, encode(func(m map[string]any) { m["eventId"] = uuid.Nil.String() }), kafka.ErrInvalidActionEvent, "nil UUID"},
		{"event time in nanoseconds", key, encode(func(m map[string]any) { m["eventTs"] = time.UnixMilli(1_764_000_000_000_000_000 / 1000) }), kafka.ErrInvalidActionEvent, "eventTs"},
		{"lone surrogate", key, encode(func(m map[string]any) { m["payload"] = `{"x":"\ud800"}` }), kafka.ErrInvalidActionEvent, "surrogate"},
		{"number out of range", key, encode(func(m map[string]any) { m["payload"] = `{"amount":1e400}` }), kafka.ErrInvalidActionEvent, "out of range"},
		{"lower-case action", key, encode(func(m map[string]any) { m["actionCode"] = "login" }), kafka.ErrInvalidActionEvent, "actionCode"},
		{"long action", key, encode(func(m map[string]any) { m["actionCode"] = "A" + strings.Repeat("B", 64) }), kafka.ErrInvalidActionEvent, "actionCode"},
		{"payload an array", key, encode(func(m map[string]any) { m["payload"] = "[1]" }), kafka.ErrInvalidActionEvent, "payload"},
		{"payload null", key, encode(func(m map[string]any) { m["payload"] = "null" }), kafka.ErrInvalidActionEvent, "payload"},
		{"payload not json", key, encode(func(m map[string]any) { m["payload"] = "{amount:1}" }), kafka.ErrInvalidActionEvent, "payload"},
		{"payload with trailing data", key, encode(func(m map[string]any) { m["payload"] = "{} {}" }), kafka.ErrInvalidActionEvent, "trailing"},
	} {
		_, err := kafka.DecodeActionEvent(reg, tc.key, tc.value)
		if !errors.Is(err, tc.want) || !errors.Is(err, kafka.ErrMalformed) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: DecodeActionEvent error = %v, want %v and ErrMalformed, saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	// Every problem is reported, not only the first.
	_, err = kafka.DecodeActionEvent(reg, key, encode(func(m map[string]any) { m["userId"] = ""; m["actionCode"] = "x" }))
	if err == nil || !strings.Contains(err.Error(), "userId") || !strings.Contains(err.Error(), "actionCode") {
		t.Fatalf("two problems reported as %v", err)
	}
}
