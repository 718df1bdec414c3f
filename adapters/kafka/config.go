package kafka

import (
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// keyMetadata is the message metadata entry that carries the Kafka key. The
// marshaler moves it to the record key and keeps it out of the headers.
const keyMetadata = "_kafka_key"

// SetKey sets the Kafka key msg will be produced with.
func SetKey(msg *message.Message, key string) { msg.Metadata.Set(keyMetadata, key) }

// marshaler is watermill-kafka's default marshaler plus the record key.
type marshaler struct{ wkafka.DefaultMarshaler }

func (m marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	key := msg.Metadata.Get(keyMetadata)
	if key != "" {
		msg = msg.Copy()
		delete(msg.Metadata, keyMetadata)
	}
	pm, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if key != "" {
		pm.Key = sarama.StringEncoder(key)
	}
	return pm, nil
}

// protocolVersion is the Kafka protocol version Sarama speaks. From 2.4 on
// Sarama fetches consumer-group offsets with the flexible OffsetFetch v6/v7,
// whose response from the embedded broker (kfake) it cannot decode ("invalid
// byteslice length"); 2.3 works with kfake and with every broker from Kafka
// 2.3 through 4.x, which keep these request versions.
func protocolVersion() sarama.KafkaVersion { return sarama.V2_3_0_0 }

func producerConfig() *sarama.Config {
	c := wkafka.DefaultSaramaSyncPublisherConfig()
	c.ClientID = "incentives"
	c.Version = protocolVersion()
	// Every write is acknowledged by all in-sync replicas, and the broker
	// drops a retried batch it already has, so a retry never duplicates or
	// reorders a key's records.
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	return c
}

func consumerConfig() *sarama.Config {
	c := wkafka.DefaultSaramaSubscriberConfig()
	c.ClientID = "incentives"
	c.Version = protocolVersion()
	// A new consumer group reads a topic from its start: a projection
	// deployed today still sees yesterday's events.
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	// A projection's group has a member per topic, so every start is a
	// rebalance in which the first member's join is refused and retried; with
	// Sarama's 2s retry backoff the projections would idle for two seconds
	// after every start. A member learns of a rebalance at its next heartbeat.
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	return c
}
