package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/incentives-platform/incentives/projections"
)

// ProjectionsConfig configures AddProjections.
type ProjectionsConfig struct {
	// Brokers is the Kafka broker list. Required.
	Brokers []string
	// Messages decodes domain messages. Required.
	Messages DomainMessages
	// DLQ publishes poisoned messages to <topic>.dlq. Required.
	DLQ message.Publisher
	// Logger is required.
	Logger watermill.LoggerAdapter
}

// ProjectionGroup returns the consumer group of projection name.
func ProjectionGroup(name string) string { return "projection." + name }

// AddProjections adds a handler to router for every domain topic each
// projector reads, in the projector's own consumer group. A message that can
// never be applied (ErrMalformed, projections.ErrUnprojectable) goes to the topic's DLQ with the reason in
// its headers and the partition moves on; any other failure (the database is
// down) is retried with backoff and then redelivered, never skipped.
func AddProjections(router *message.Router, cfg ProjectionsConfig, projectors ...projections.Projector) error {
	if len(cfg.Brokers) == 0 || cfg.Messages.Codec == nil || cfg.DLQ == nil || cfg.Logger == nil {
		return errors.New("kafka projections: Brokers, Messages, DLQ and Logger are required")
	}
	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second,
		Multiplier: 2, Logger: cfg.Logger}
	for _, p := range projectors {
		group := ProjectionGroup(p.Name())
		for _, aggregate := range p.Aggregates() {
			topic := DomainTopic(aggregate)
			sub, err := NewSubscriber(cfg.Brokers, group, cfg.Logger)
			if err != nil {
				return err
			}
			poison, err := middleware.PoisonQueueWithFilter(cfg.DLQ, DLQTopic(topic), func(err error) bool {
				return errors.Is(err, ErrMalformed) || errors.Is(err, projections.ErrUnprojectable)
			})
			if err != nil {
				return err
			}
			h := router.AddConsumerHandler(group+"."+topic, topic, sub, projectionHandler(p, topic, cfg.Messages))
			h.AddMiddleware(retry.Middleware, poison)
		}
	}
	return nil
}

func projectionHandler(p projections.Projector, topic string, messages DomainMessages) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		rec, err := messages.Decode(msg)
		if err != nil {
			return err
		}
		partition, offset, ok := MessageOffset(msg)
		if !ok {
			return fmt.Errorf("projection %s: message %s has no partition offset", p.Name(), msg.UUID)
		}
		return p.Handle(msg.Context(), projections.Delivery{Event: rec, Checkpoint: projections.Checkpoint{
			Projection: p.Name(), Topic: topic, Partition: partition, Offset: offset, Position: rec.Position,
		}})
	}
}
