package kafka

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewPublisher returns a synchronous, idempotent publisher: Publish returns
// once every message is acknowledged by the broker. Messages with the same
// key (see SetKey) land in the same partition, in order.
func NewPublisher(brokers []string, logger watermill.LoggerAdapter) (message.Publisher, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka publisher: no brokers")
	}
	return wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             marshaler{},
		OverwriteSaramaConfig: producerConfig(),
	}, logger)
}

// NewSubscriber returns a subscriber in consumer group group. A new group
// starts at the beginning of each topic. Offsets are committed after the
// handler acks, so a crash redelivers what was not acked: handlers must be
// idempotent.
func NewSubscriber(brokers []string, group string, logger watermill.LoggerAdapter) (message.Subscriber, error) {
	if len(brokers) == 0 {
		return nil, errors.New("kafka subscriber: no brokers")
	}
	if group == "" {
		return nil, errors.New("kafka subscriber: no consumer group")
	}
	return wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           marshaler{},
		OverwriteSaramaConfig: consumerConfig(),
		ConsumerGroup:         group,
	}, logger)
}

// MessageOffset returns the partition and offset msg was consumed from.
func MessageOffset(msg *message.Message) (partition int32, offset int64, ok bool) {
	p, ok1 := wkafka.MessagePartitionFromCtx(msg.Context())
	o, ok2 := wkafka.MessagePartitionOffsetFromCtx(msg.Context())
	return p, o, ok1 && ok2
}
