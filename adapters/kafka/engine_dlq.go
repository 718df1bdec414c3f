package kafka

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers the engine adds to a record it sends to tenant-events.dlq. The
// record keeps its key, value and headers as they arrived.
const (
	// HeaderError is why the record can never be processed.
	HeaderError = "error"
	// HeaderOriginalTopic, HeaderOriginalPartition and HeaderOriginalOffset
	// say where the record was read.
	HeaderOriginalTopic     = "original-topic"
	HeaderOriginalPartition = "original-partition"
	HeaderOriginalOffset    = "original-offset"
	// HeaderConsumerGroup is the group that gave up on it.
	HeaderConsumerGroup = "consumer-group"

	// headerReasonPoisoned and headerHandlerPoisoned are the names the
	// watermill consumers' DLQs use (docs/topics.md); the engine writes
	// them too, so one operator query reads every DLQ.
	headerReasonPoisoned  = "reason_poisoned"
	headerHandlerPoisoned = "handler_poisoned"
)

// dlqRecord is r, unchanged, addressed to the DLQ with why and whence.
func (c *EngineConsumer) dlqRecord(r *kgo.Record, reason error) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+7)
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderError, HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset, HeaderConsumerGroup,
			headerReasonPoisoned, headerHandlerPoisoned:
			// A producer cannot forge the engine's verdict.
		default:
			headers = append(headers, h)
		}
	}
	msg := []byte(reason.Error())
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: msg},
		kgo.RecordHeader{Key: HeaderOriginalTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderOriginalPartition, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
		kgo.RecordHeader{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderConsumerGroup, Value: []byte(c.cfg.Group)},
		kgo.RecordHeader{Key: headerReasonPoisoned, Value: msg},
		kgo.RecordHeader{Key: headerHandlerPoisoned, Value: []byte(c.cfg.Group)},
	)
	return &kgo.Record{Topic: c.cfg.DLQTopic, Key: r.Key, Value: r.Value, Headers: headers, Timestamp: r.Timestamp}
}

func headerValue(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}
