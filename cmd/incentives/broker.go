package main

import (
	"context"
	"fmt"

	"github.com/incentives-platform/incentives/adapters/kafka"
)

// runBroker serves the embedded broker alone, so several platform processes
// (engine scale-out, kill-and-restart tests) share a broker that outlives them.
func runBroker(ctx context.Context, env environment, args []string) error {
	var (
		addr       string
		partitions int
	)
	fs := newFlagSet(env, "broker", "broker [flags]")
	b := newBinder(fs, env.getenv)
	b.string(&addr, "kafka-embedded-addr", defaultEmbeddedAddr, "listen address")
	b.int(&partitions, "kafka-partitions", 8, "partitions of topics created without a count")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: addr, Partitions: partitions})
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintf(env.stdout, "embedded Kafka broker listening on %s (in memory; stop with Ctrl-C)\n", broker.Addr())
	fmt.Fprintf(env.stdout, "point platform processes at it: KAFKA_BROKERS=%s\n", broker.Addr())
	<-ctx.Done()
	return nil
}
