package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/projections"
)

// IncentivesChangeTopic is the change stream of the incentive read model
// (table incentive_view), in Debezium's envelope (docs/topics.md).
const IncentivesChangeTopic = "db.incentives"

// ContentTypeJSON marks a JSON value.
const ContentTypeJSON = "application/json"

// Change-event operations, as Debezium names them.
const (
	OpCreate = "c"
	OpUpdate = "u"
	OpDelete = "d"
	// OpRead is a row read by a snapshot, not changed.
	OpRead = "r"
)

// ChangeEvent is the value of a record on a db.<table> topic: Debezium's
// change-event envelope as its JsonConverter writes it with
// schemas.enable=false, so a sink built for Debezium reads it unchanged.
// Row is the table's row type (IncentiveRow for db.incentives).
//
// Before is the row before the change (null for a create or a snapshot
// read), After the row after it (null for a delete). Op is one of OpCreate,
// OpUpdate, OpDelete, OpRead. TsMs is when the change happened, in
// milliseconds since the Unix epoch: the time the event store recorded the
// event that caused it, so every copy of a change (a relay retry, a replay)
// carries the same value.
type ChangeEvent[Row any] struct {
	Before *Row         `json:"before"`
	After  *Row         `json:"after"`
	Source ChangeSource `json:"source"`
	Op     string       `json:"op"`
	TsMs   int64        `json:"ts_ms"`
}

// ChangeSource is the envelope's source block: where the change comes from.
// Debezium's fields, with the platform's own in place of the WAL's: the
// event-store position and stream version of the event that caused the
// change order the changes of one row (Debezium's lsn).
type ChangeSource struct {
	// Version is the version of the producer of the stream, "incentives-1".
	Version string `json:"version"`
	// Connector is "incentives".
	Connector string `json:"connector"`
	// Name is the logical name of the source, "db" (the topic prefix).
	Name string `json:"name"`
	// TsMs is as the envelope's TsMs.
	TsMs int64 `json:"ts_ms"`
	// Snapshot is "false" for a change, "true" for a snapshot read.
	Snapshot string `json:"snapshot"`
	// DB is the PostgreSQL database that holds the table.
	DB     string `json:"db"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Position is the event-store position of the event that caused the
	// change.
	Position int64 `json:"position"`
	// StreamVersion is that event's version in its stream.
	StreamVersion int64 `json:"stream_version"`
}

// IncentiveKey is the key of a db.incentives record, Debezium's key struct
// of the table's primary key: {"incentive_id":"<uuid>"}.
type IncentiveKey struct {
	IncentiveID string `json:"incentive_id"`
}

// IncentiveRow is a row of incentive_view as Debezium writes it: columns by
// name; uuids as strings; reward_amount a decimal string at the column's
// scale (decimal.handling.mode=string); issued_at ISO-8601 in UTC with
// milliseconds (io.debezium.time.ZonedTimestamp).
type IncentiveRow struct {
	IncentiveID     string `json:"incentive_id"`
	TenantID        string `json:"tenant_id"`
	CampaignID      string `json:"campaign_id"`
	CampaignVersion int64  `json:"campaign_version"`
	DecisionID      string `json:"decision_id"`
	UserID          string `json:"user_id"`
	SourceEventID   string `json:"source_event_id"`
	RewardType      string `json:"reward_type"`
	RewardCurrency  string `json:"reward_currency"`
	RewardAmount    string `json:"reward_amount"`
	IssuedAt        string `json:"issued_at"`
	Position        int64  `json:"position"`
	Version         int64  `json:"version"`
}

// IncentiveChangeEvent is the value of a db.incentives record.
type IncentiveChangeEvent = ChangeEvent[IncentiveRow]

// Constants of the db.incentives stream.
const (
	changeSourceVersion   = "incentives-1"
	changeConnector       = "incentives"
	changeSourceName      = "db"
	incentiveTable        = "incentive_view"
	incentiveSchema       = "public"
	defaultChangeDatabase = "incentives"
	// incentiveAmountScale is the scale of incentive_view.reward_amount,
	// numeric(20,4): Debezium writes a numeric at its column's scale.
	incentiveAmountScale = 4
	// zonedTimestamp is io.debezium.time.ZonedTimestamp's layout, in UTC
	// to the millisecond.
	zonedTimestamp = "2006-01-02T15:04:05.000Z"
)

// changeIDSpace is the UUIDv5 namespace of change-event message ids. It must
// never change: every copy of a change carries the same id.
var changeIDSpace = uuid.MustParse("8d1f0f3e-2c7a-4e4b-9b6e-1f2a3c4d5e6f")

// IncentiveRowOf returns the row of v as db.incentives writes it.
func IncentiveRowOf(v *projections.IncentiveView) IncentiveRow {
	return IncentiveRow{
		IncentiveID:     v.IncentiveID.String(),
		TenantID:        v.TenantID.String(),
		CampaignID:      v.CampaignID.String(),
		CampaignVersion: v.CampaignVersion,
		DecisionID:      v.DecisionID.String(),
		UserID:          v.UserID,
		SourceEventID:   v.SourceEventID.String(),
		RewardType:      string(v.RewardType),
		RewardCurrency:  v.RewardCurrency,
		RewardAmount:    v.RewardAmount.StringFixed(incentiveAmountScale),
		IssuedAt:        v.IssuedAt.UTC().Format(zonedTimestamp),
		Position:        v.Position,
		Version:         v.Version,
	}
}

// IncentiveChanges maps a change of an incentive_view row to its
// db.incentives message. It is safe for concurrent use.
type IncentiveChanges struct {
	// Database names the database in the envelope's source.db. Default
	// "incentives".
	Database string
	// Origin, when set, goes into every message id: a replay's swap sets
	// it, so that a change it publishes (a corrected row at the same
	// version, a row re-created after a delete) never carries the id of
	// an earlier change a sink may have deduplicated.
	Origin string
}

// IncentiveChangeMessage returns the topic and message of the change of an
// incentive_view row from before (nil: the row is new, op "c") to after
// (op "u" otherwise). The
// message is keyed by IncentiveKey, so one incentive's changes stay in order
// in one partition; its id is a UUIDv5 of the row and version, the same on
// every copy; ts_ms is after.RecordedAt.
//
// With after nil the change is a delete (op "d", after null) of before, the
// row a replay from a later start no longer holds; it is dated by
// before.RecordedAt, which the caller sets to the time of the delete.
func (c IncentiveChanges) IncentiveChangeMessage(before, after *projections.IncentiveView) (string, *message.Message, error) {
	if after == nil {
		if before == nil || before.RecordedAt.IsZero() {
			return "", nil, errors.New("db.incentives: a delete needs the row before it, dated")
		}
		row := IncentiveRowOf(before)
		ev := c.event(OpDelete, before)
		ev.Before = &row
		ts := strconv.FormatInt(ev.TsMs, 10)
		return c.message(ev, row.IncentiveID, "delete/"+ts)
	}
	if after.RecordedAt.IsZero() {
		return "", nil, fmt.Errorf("db.incentives: incentive %s v%d has no RecordedAt to date its change", after.IncentiveID, after.Version)
	}
	row := IncentiveRowOf(after)
	ev := c.event(OpCreate, after)
	ev.After = &row
	if before != nil {
		b := IncentiveRowOf(before)
		ev.Before, ev.Op = &b, OpUpdate
	}
	return c.message(ev, row.IncentiveID, strconv.FormatInt(after.Version, 10))
}

// event is the envelope of a change of op to the row of v, dated by
// v.RecordedAt, with its source; the caller sets before and after.
func (c IncentiveChanges) event(op string, v *projections.IncentiveView) IncentiveChangeEvent {
	db := c.Database
	if db == "" {
		db = defaultChangeDatabase
	}
	ts := v.RecordedAt.UnixMilli()
	return IncentiveChangeEvent{
		Op:   op,
		TsMs: ts,
		Source: ChangeSource{
			Version: changeSourceVersion, Connector: changeConnector, Name: changeSourceName, TsMs: ts, Snapshot: "false",
			DB: db, Schema: incentiveSchema, Table: incentiveTable, Position: v.Position, StreamVersion: v.Version,
		},
	}
}

// message is the db.incentives message of ev, keyed by the incentive; its
// id is a UUIDv5 of the incentive and what names the change (its version,
// or a delete's time), the same on every copy.
func (c IncentiveChanges) message(ev IncentiveChangeEvent, incentiveID, change string) (string, *message.Message, error) {
	value, err := json.Marshal(ev)
	if err != nil {
		return "", nil, err
	}
	key, err := json.Marshal(IncentiveKey{IncentiveID: incentiveID})
	if err != nil {
		return "", nil, err
	}
	name := incentiveTable + "/" + incentiveID + "/" + change
	if c.Origin != "" {
		name = c.Origin + "/" + name
	}
	id := uuid.NewSHA1(changeIDSpace, []byte(name))
	msg := message.NewMessage(id.String(), value)
	SetKey(msg, string(key))
	msg.Metadata.Set(HeaderContentType, ContentTypeJSON)
	return IncentivesChangeTopic, msg, nil
}
