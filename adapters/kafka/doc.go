// Package kafka is the platform's Kafka adapter: watermill-kafka publishers
// and subscribers (Sarama underneath), the embedded Kafka-protocol broker
// (franz-go's kfake) used when no real broker is configured, topic
// provisioning, and the mapping between recorded domain events and Kafka
// messages on the ic.domain.<aggregate> topics.
//
// The same code talks to a real cluster and to the embedded broker, over TCP
// either way; only the broker list differs. This package is the only one that
// imports Sarama, watermill-kafka and franz-go.
package kafka
