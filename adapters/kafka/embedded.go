package kafka

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Addr is where the broker listens; "127.0.0.1:0" picks a free port.
	// Default 127.0.0.1:9092, so kcat and other Kafka tools can connect.
	Addr string
	// Partitions is the partition count of topics created without one. Default 8.
	Partitions int
}

func (c *EmbeddedConfig) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9092"
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
}

// Embedded is an in-process Kafka-protocol broker. It keeps everything in
// memory: what it held is gone when it closes (the event store is the source
// of truth, not the broker).
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// ErrAddrInUse is returned by StartEmbedded when its address is taken.
var ErrAddrInUse = errors.New("address already in use")

// StartEmbedded starts a one-node broker listening on cfg.Addr.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.setDefaults()
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.Addr) }
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ClusterID("incentives-embedded"),
	)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("embedded kafka broker on %s: %w (another platform process or `incentives broker` may hold it: point KAFKA_BROKERS at it, or set KAFKA_EMBEDDED_ADDR)", cfg.Addr, ErrAddrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded kafka broker on %s: %w", cfg.Addr, err)
	}
	return &Embedded{cluster: cluster, addr: cluster.ListenAddrs()[0]}, nil
}

// Addr returns the address clients connect to.
func (e *Embedded) Addr() string { return e.addr }

// Brokers returns the broker list of the embedded broker.
func (e *Embedded) Brokers() []string { return []string{e.addr} }

// Close stops the broker and drops its data.
func (e *Embedded) Close() { e.cluster.Close() }
