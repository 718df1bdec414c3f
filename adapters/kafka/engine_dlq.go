package kafka

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
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

	// The engine also writes watermill's poison headers (its consumers'
	// DLQs use them, docs/topics.md), so one operator query reads every DLQ.
	headerReasonPoisoned  = middleware.ReasonForPoisonedKey
	headerHandlerPoisoned = middleware.PoisonedHandlerKey
)

// maxReasonBytes bounds the reason a DLQ record carries in its headers.
const maxReasonBytes = 1024

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
	if len(msg) > maxReasonBytes {
		// The reason quotes the record's fields, which can be as large as
		// the record: a DLQ record twice the size of its source could
		// exceed the broker's limit and block the partition it empties.
		msg = append(msg[:maxReasonBytes:maxReasonBytes], "…"...)
	}
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

// withoutValue is a DLQ record stripped of its value, for a source record so
// close to the broker's size limit that its DLQ copy, with headers, is over
// it: the headers still say where the original is.
func withoutValue(r *kgo.Record) *kgo.Record {
	stub := *r
	stub.Value = nil
	stub.Headers = append(stub.Headers[:len(stub.Headers):len(stub.Headers)], kgo.RecordHeader{Key: "value-dropped", Value: []byte("too large for the DLQ")})
	return &stub
}
