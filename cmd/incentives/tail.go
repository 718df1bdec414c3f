package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
)

// tailLine is one record of `incentives tail`, as a JSON line.
type tailLine struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       string            `json:"key,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Schema names the Avro schema (schemas/avro/<schema>.avsc) of Value.
	Schema string `json:"schema,omitempty"`
	// Value is the record in Avro's JSON encoding, or as it is if it is JSON.
	Value json.RawMessage `json:"value,omitempty"`
	// Raw is the value in base64 when it is neither Avro nor JSON.
	Raw   string `json:"raw,omitempty"`
	Error string `json:"error,omitempty"`
}

func runTail(ctx context.Context, env environment, args []string) error {
	var (
		brokers, embeddedAddr string
		follow                bool
	)
	fs := newFlagSet(env, "tail", "tail [flags] TOPIC")
	b := newBinder(fs, env.getenv)
	b.string(&brokers, "kafka-brokers", embedded, `broker list; "embedded" means the embedded broker of a running platform`)
	b.string(&embeddedAddr, "kafka-embedded-addr", defaultEmbeddedAddr, "address of the embedded broker")
	fs.BoolVar(&follow, "f", false, "keep waiting for new records")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg := Config{KafkaBrokers: brokers}
	list := cfg.brokerList()
	if list == nil {
		list = []string{embeddedAddr}
	}
	registry, _, err := avro.LoadPlatform()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	err = kafka.Tail(ctx, list, fs.Arg(0), follow, func(r kafka.TailRecord) error {
		line := tailLine{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
			Key: string(r.Key), Headers: r.Headers}
		line.Schema, line.Value, line.Raw, line.Error = decodeValue(registry, r.Value)
		return enc.Encode(line)
	})
	if errors.Is(err, kafka.ErrNoSuchTopic) {
		return fmt.Errorf("%w (is the platform running, and is --kafka-brokers right?)", err)
	}
	return err
}

// decodeValue renders a record value: Avro single-object values in Avro's
// JSON encoding, JSON as it is, anything else in base64.
func decodeValue(registry *avro.Registry, value []byte) (schema string, js json.RawMessage, raw, problem string) {
	if s, native, err := registry.Decode(value); err == nil {
		out, err := s.EncodeJSON(native)
		if err == nil {
			return s.Name, out, "", ""
		}
		problem = err.Error()
	} else if len(value) > 1 && value[0] == 0xC3 && value[1] == 0x01 {
		problem = err.Error()
	}
	if json.Valid(value) {
		return "", value, "", problem
	}
	return "", nil, base64.StdEncoding.EncodeToString(value), problem
}
