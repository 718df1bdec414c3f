package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names of the platform's contracts (DESIGN.md §4).
const (
	TenantEventsTopic       = "tenant-events"
	IncentiveGeneratedTopic = "incentive-generated"
	domainTopicPrefix       = "ic.domain."
	dlqSuffix               = ".dlq"
)

// DomainTopic returns the topic of an aggregate's events, ic.domain.<aggregate>.
func DomainTopic(aggregate string) string { return domainTopicPrefix + aggregate }

// DLQTopic returns the dead-letter topic of topic, <topic>.dlq.
func DLQTopic(topic string) string { return topic + dlqSuffix }

// TopicSpec is a topic the platform needs.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// EnsureTopics creates the topics that do not exist yet, each with its dead
// letter topic, and leaves existing ones as they are. Replication is the
// broker's default.
func EnsureTopics(ctx context.Context, brokers []string, topics []TopicSpec) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka admin client: %w", err)
	}
	defer client.Close()
	adm := kadm.NewClient(client)
	var errs []error
	for _, t := range topics {
		for _, name := range []string{t.Name, DLQTopic(t.Name)} {
			resp, err := adm.CreateTopic(ctx, t.Partitions, -1, nil, name)
			if err == nil {
				err = resp.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Ping checks that a broker answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer client.Close()
	_, err = kadm.NewClient(client).BrokerMetadata(ctx)
	return err
}

// EndOffsets returns the sum over the topics' partitions of their end
// offsets: how many records they have ever received.
func EndOffsets(ctx context.Context, brokers []string, topics ...string) (int64, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer client.Close()
	ends, err := kadm.NewClient(client).ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	if err := ends.Error(); err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}
