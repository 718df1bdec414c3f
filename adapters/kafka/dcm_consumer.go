package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/domain/engine"
)

// DCMGroup returns the consumer group of the DCM instance instance:
// dcm.<instance>. Every instance has a group of its own, so each one reads
// every incentive and delivers it to the sockets it holds (docs/architecture.md).
func DCMGroup(instance string) string { return "dcm." + instance }

// IncentiveSink receives the incentives the DCM consumer reads. Deliver is
// called from the consumer's goroutines, one partition at a time in offset
// order, and must not block: the next incentive of the partition waits for
// it. It must be safe for concurrent use.
type IncentiveSink interface {
	Deliver(engine.Incentive)
}

// DCMConsumerConfig configures NewDCMConsumer.
type DCMConsumerConfig struct {
	// Brokers is the Kafka broker list. Required.
	Brokers []string
	// Registry decodes IncentiveEvent values. Required.
	Registry *avro.Registry
	// Group is the consumer group, DCMGroup(instance id). Required.
	Group string
	// Sink gets every incentive decoded. Required.
	Sink IncentiveSink
	// DLQ publishes undecodable messages to incentive-generated.dlq. Required.
	DLQ message.Publisher
	// Logger is required.
	Logger watermill.LoggerAdapter
	// Topic is what to consume. Default incentive-generated.
	Topic string
	// CloseTimeout bounds how long Run waits, after its context ends, for the
	// message in hand. Default 10s.
	CloseTimeout time.Duration
}

func (c *DCMConsumerConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = IncentiveGeneratedTopic
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 10 * time.Second
	}
}

// Validate reports every missing required field.
func (c DCMConsumerConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("Registry is required"))
	} else if _, ok := c.Registry.Schema(IncentiveEventSchema); !ok {
		errs = append(errs, fmt.Errorf("Registry has no schema %s", IncentiveEventSchema))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("Group is required"))
	}
	if c.Sink == nil {
		errs = append(errs, errors.New("Sink is required"))
	}
	if c.DLQ == nil {
		errs = append(errs, errors.New("DLQ is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, errors.New("CloseTimeout must not be negative"))
	}
	return errors.Join(errs...)
}

// DCMConsumer reads incentive-generated for one DCM instance and hands every
// incentive to its sink. A new group starts at the newest offset: a
// notification is for the sockets open now, and a client that was away
// catches up from the database when it reconnects. A restarted instance with
// the same group resumes where it stopped. An undecodable message goes to
// incentive-generated.dlq with the reason in header reason_poisoned; nothing
// else can fail, so nothing is retried.
type DCMConsumer struct {
	cfg    DCMConsumerConfig
	router *message.Router
	ready  *claimsReady
}

// NewDCMConsumer returns a consumer; Run starts it.
func NewDCMConsumer(cfg DCMConsumerConfig) (*DCMConsumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dcm consumer: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("dcm consumer: %w", err)
	}
	sc := consumerConfig()
	// A socket opened after an incentive was published never wanted it
	// live; the catch-up reads it from the database.
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	ready := &claimsReady{topic: cfg.Topic, ch: make(chan struct{})}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers: cfg.Brokers, Unmarshaler: marshaler{}, OverwriteSaramaConfig: sc, ConsumerGroup: cfg.Group,
		Tracer: ready,
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("dcm consumer: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(cfg.DLQ, DLQTopic(cfg.Topic), func(err error) bool {
		return errors.Is(err, ErrMalformed)
	})
	if err != nil {
		return nil, fmt.Errorf("dcm consumer: %w", err)
	}
	c := &DCMConsumer{cfg: cfg, router: router, ready: ready}
	h := router.AddConsumerHandler(cfg.Group+"."+cfg.Topic, cfg.Topic, sub, c.handle)
	h.AddMiddleware(poison)
	return c, nil
}

func (c *DCMConsumer) handle(msg *message.Message) error {
	inc, err := DecodeIncentiveEvent(c.cfg.Registry, msg.Payload)
	if err != nil {
		return err
	}
	c.cfg.Sink.Deliver(inc)
	return nil
}

// Run consumes until ctx ends, then closes the subscription.
func (c *DCMConsumer) Run(ctx context.Context) error {
	if err := c.router.Run(ctx); err != nil {
		return fmt.Errorf("dcm consumer: %w", err)
	}
	return nil
}

// Ready is closed once the group holds every partition of the topic and
// each partition's starting offset is fixed: from then on, every incentive
// published reaches the sink. Until then, one published at the wrong moment
// could be skipped by a new group starting at the newest offset, so the DCM
// accepts sockets only after Ready.
func (c *DCMConsumer) Ready() <-chan struct{} { return c.ready.ch }

// claimsReady tells when a group session has started consuming every
// partition it claimed. watermill-kafka's only hook into the Sarama group
// handler is its tracer, so that is where it sits; it traces nothing.
// Sarama calls ConsumeClaim for a partition after it has resolved the
// partition's starting offset, which is the moment that matters.
type claimsReady struct {
	topic string
	once  sync.Once
	ch    chan struct{}
}

var _ wkafka.SaramaTracer = (*claimsReady)(nil)

func (r *claimsReady) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }
func (r *claimsReady) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}
func (r *claimsReady) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}
func (r *claimsReady) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return &readyHandler{ConsumerGroupHandler: h, ready: r}
}

// readyHandler counts a session's started claims.
type readyHandler struct {
	sarama.ConsumerGroupHandler
	ready   *claimsReady
	want    atomic.Int64
	started atomic.Int64
}

func (h *readyHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.started.Store(0)
	h.want.Store(int64(len(s.Claims()[h.ready.topic])))
	if h.want.Load() == 0 {
		// Another member holds every partition: nothing to wait for here.
		h.ready.once.Do(func() { close(h.ready.ch) })
	}
	return h.ConsumerGroupHandler.Setup(s)
}

func (h *readyHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if h.started.Add(1) == h.want.Load() {
		h.ready.once.Do(func() { close(h.ready.ch) })
	}
	return h.ConsumerGroupHandler.ConsumeClaim(s, claim)
}
