package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/incentives-platform/incentives/adapters/avro"
	cengine "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
)

// HeaderIncentiveID carries the incentive id on incentive-generated, so a
// consumer can deduplicate without decoding the value.
const HeaderIncentiveID = "incentive-id"

// IncentivePublisherConfig configures NewIncentivePublisher.
type IncentivePublisherConfig struct {
	// Brokers is the Kafka broker list. Required.
	Brokers []string
	// Registry encodes IncentiveEvent values. Required.
	Registry *avro.Registry
	// Topic is where incentives go. Default incentive-generated.
	Topic string
	// ClientID names the producer to the brokers. Default incentives-engine.
	ClientID string
}

func (c *IncentivePublisherConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = IncentiveGeneratedTopic
	}
	if c.ClientID == "" {
		c.ClientID = "incentives-engine"
	}
}

// Validate reports every missing required field.
func (c IncentivePublisherConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("Registry is required"))
	} else if _, ok := c.Registry.Schema(IncentiveEventSchema); !ok {
		errs = append(errs, fmt.Errorf("Registry has no schema %s", IncentiveEventSchema))
	}
	return errors.Join(errs...)
}

// IncentivePublisher writes issued incentives to incentive-generated as Avro
// IncentiveEvents keyed by user id, so one user's rewards stay in order in
// one partition and a DCM instance sees all of them. Safe for concurrent
// use; Close it when done.
type IncentivePublisher struct {
	cfg      IncentivePublisherConfig
	client   *kgo.Client
	registry *avro.Registry
}

var _ cengine.IncentivePublisher = (*IncentivePublisher)(nil)

// NewIncentivePublisher returns a publisher with its own idempotent producer
// (acks from all in-sync replicas), so a retried batch never duplicates or
// reorders a user's incentives within a partition.
func NewIncentivePublisher(cfg IncentivePublisherConfig) (*IncentivePublisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("incentive publisher: %w", err)
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Flush sends at once; lingering would only add latency between
		// the engine's decision and the user's notification.
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, fmt.Errorf("incentive publisher: %w", err)
	}
	return &IncentivePublisher{cfg: cfg, client: client, registry: cfg.Registry}, nil
}

// PublishIncentives produces every incentive and returns once the broker has
// acknowledged all of them, or with the first error (some may have been
// written: a retry publishes them again, and consumers deduplicate by
// incentive id).
func (p *IncentivePublisher) PublishIncentives(ctx context.Context, incentives []engine.Incentive) error {
	if len(incentives) == 0 {
		return nil
	}
	records := make([]*kgo.Record, len(incentives))
	for i, inc := range incentives {
		value, err := EncodeIncentiveEvent(p.registry, inc)
		if err != nil {
			return fmt.Errorf("publish incentive %s: %w", inc.ID, err)
		}
		records[i] = &kgo.Record{
			Key:   []byte(inc.UserID),
			Value: value,
			Headers: []kgo.RecordHeader{
				{Key: HeaderContentType, Value: []byte(ContentTypeAvro)},
				{Key: HeaderIncentiveID, Value: []byte(inc.ID.String())},
			},
		}
	}
	// Produce buffers every record first, then Flush sends them in as few
	// requests as the partitions allow; ProduceSync would wait for each
	// partition's linger in turn.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(records))
	for _, r := range records {
		p.client.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	flushErr := p.client.Flush(ctx)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("publish %d incentives to %s: %w", len(records), p.cfg.Topic, firstErr)
	}
	if flushErr != nil {
		return fmt.Errorf("publish %d incentives to %s: %w", len(records), p.cfg.Topic, flushErr)
	}
	return nil
}

// Close releases the producer's connections. Call it after the last
// PublishIncentives has returned: each one waits for its own acks.
func (p *IncentivePublisher) Close() { p.client.Close() }

// EncodeIncentiveEvent returns inc as an Avro single-object IncentiveEvent.
func EncodeIncentiveEvent(registry *avro.Registry, inc engine.Incentive) ([]byte, error) {
	return registry.Encode(IncentiveEventSchema, map[string]any{
		"incentiveId":    inc.ID.String(),
		"tenantId":       inc.TenantID.String(),
		"campaignId":     inc.CampaignID.String(),
		"userId":         inc.UserID,
		"sourceEventId":  inc.SourceEventID.String(),
		"rewardType":     string(inc.Reward.Type),
		"rewardCurrency": inc.Reward.Currency,
		"rewardAmount":   inc.Reward.Amount.String(),
		"issuedAt":       inc.IssuedAt,
	})
}

// DecodeIncentiveEvent reads an incentive-generated value. The event does
// not carry the decision id, so DecisionID is uuid.Nil. Errors wrap
// ErrMalformed.
func DecodeIncentiveEvent(registry *avro.Registry, value []byte) (engine.Incentive, error) {
	s, m, err := registry.Decode(value)
	if err != nil {
		return engine.Incentive{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if s.Name != IncentiveEventSchema {
		return engine.Incentive{}, fmt.Errorf("%w: schema %s, want %s", ErrMalformed, s.Name, IncentiveEventSchema)
	}
	var errs []error
	str := func(field string) string {
		v, ok := m[field].(string)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: want a string, got %T", field, m[field]))
		}
		return v
	}
	id := func(field string) uuid.UUID {
		u, err := uuid.Parse(str(field))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return u
	}
	inc := engine.Incentive{
		ID:            id("incentiveId"),
		TenantID:      id("tenantId"),
		CampaignID:    id("campaignId"),
		UserID:        str("userId"),
		SourceEventID: id("sourceEventId"),
		Reward:        engine.Reward{Type: rules.RewardType(str("rewardType")), Currency: str("rewardCurrency")},
	}
	amount, err := decimal.NewFromString(str("rewardAmount"))
	if err != nil {
		errs = append(errs, fmt.Errorf("rewardAmount: %w", err))
	}
	inc.Reward.Amount = amount
	if at, ok := m["issuedAt"].(time.Time); ok {
		inc.IssuedAt = at.UTC()
	} else {
		errs = append(errs, fmt.Errorf("issuedAt: want a timestamp, got %T", m["issuedAt"]))
	}
	if len(errs) > 0 {
		return engine.Incentive{}, fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	return inc, nil
}
