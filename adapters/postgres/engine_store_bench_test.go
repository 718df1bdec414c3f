package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// benchBatch is one engine batch: events, and the decisions and incentives
// of the share of them that match a campaign and issue.
type benchBatch struct {
	events     []engine.ActionEvent
	decisions  []enginecmd.RecordedDecision
	incentives []engine.Incentive
}

func newBenchBatch(size int, issuing float64, tenants []uuid.UUID, campaignID uuid.UUID, at time.Time) benchBatch {
	var b benchBatch
	every := int(1 / issuing)
	for i := range size {
		e := engine.ActionEvent{EventID: uuid.New(), TenantID: tenants[i%len(tenants)], UserID: fmt.Sprintf("user-%d", i%20000),
			ActionCode: "PURCHASE", EventTs: at.Add(time.Duration(i) * time.Millisecond),
			RawPayload: []byte(fmt.Sprintf(`{"amount": %d, "sku": "sku-%d", "channel": "app"}`, 100+i%900, i%50))}
		b.events = append(b.events, e)
		if i%every != 0 {
			continue
		}
		d := engine.Decision{ID: engine.DecisionID(campaignID, e.UserID, e.EventID), TenantID: e.TenantID, UserID: e.UserID,
			CampaignID: campaignID, CampaignVer: 3, SourceEventID: e.EventID, Outcome: engine.OutcomeIssued, DecidedAt: e.EventTs,
			Reward: &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.New(int64(500+i%900), -2)},
			Inputs: map[string]any{"payload": map[string]any{"amount": json.Number(fmt.Sprint(100 + i%900)), "sku": "sku-1", "channel": "app"},
				"condition": "event.payload.amount >= 100"}}
		counter := enginecmd.LimitCounter{Scope: "USER", Kind: "DAY", Cap: 10, Seen: 1}
		b.decisions = append(b.decisions, enginecmd.RecordedDecision{Decision: d,
			Limits: &enginecmd.LimitAnswer{Granted: true, Counters: []enginecmd.LimitCounter{counter, {Scope: "GLOBAL", Kind: "DAY", Cap: 100000, Seen: 42}}}})
		b.incentives = append(b.incentives, engine.NewIncentive(d))
	}
	return b
}

// BenchmarkEngineBatch writes one engine batch of 5,000 action events of
// which about 10% issue a reward: LogEvents, then Record (decisions,
// incentives, IncentiveIssued events with outbox rows), then Commit. Each
// phase's share is reported, to show where a batch's time goes.
func BenchmarkEngineBatch(b *testing.B) {
	for _, tc := range []struct {
		name    string
		size    int
		issuing float64
	}{{"5000_events_10pct_issuing", 5000, 0.1}, {"5000_events_none_issuing", 5000, 0}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			f := newEngineFixture(b)
			tenants := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
			campaignID := uuid.New()
			issuing := tc.issuing
			if issuing == 0 {
				issuing = 1.0 / float64(tc.size+1)
			}
			batches := make([]benchBatch, b.N)
			at := time.Now().UTC().Truncate(time.Hour)
			for i := range batches {
				batches[i] = newBenchBatch(tc.size, issuing, tenants, campaignID, at)
			}
			var logT, recordT, commitT time.Duration
			b.ResetTimer()
			for i := range b.N {
				batch := batches[i]
				t0 := time.Now()
				tx, err := f.store.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				fresh, err := tx.LogEvents(ctx, batch.events)
				if err != nil || len(fresh) != len(batch.events) {
					b.Fatalf("LogEvents: %d fresh, %v", len(fresh), err)
				}
				t1 := time.Now()
				if _, err := tx.Record(ctx, batch.decisions, batch.incentives); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				logT, recordT, commitT = logT+t1.Sub(t0), recordT+t2.Sub(t1), commitT+t3.Sub(t2)
			}
			b.StopTimer()
			total := logT + recordT + commitT
			b.ReportMetric(float64(tc.size*b.N)/total.Seconds(), "events/s")
			b.ReportMetric(float64(logT.Milliseconds())/float64(b.N), "ms-log/op")
			b.ReportMetric(float64(recordT.Milliseconds())/float64(b.N), "ms-record/op")
			b.ReportMetric(float64(commitT.Milliseconds())/float64(b.N), "ms-commit/op")
			b.ReportMetric(float64(len(batches[0].incentives)), "incentives/op")
		})
	}
}
