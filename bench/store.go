package main

import (
	"context"
	"errors"

	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/kafka"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
)

// benchStore is a fresh migrated database with the platform's event store
// over it, as serve wires it: what every suite that writes events starts from.
type benchStore struct {
	url      string
	db       *postgres.DB
	registry *avro.Registry
	codec    *avro.EventCodec
	store    *postgres.EventStore
	drop     func() error
}

func openStore(ctx context.Context) (_ *benchStore, err error) {
	b := &benchStore{}
	if b.url, b.drop, err = pgtest.NewDatabase(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = b.close()
		}
	}()
	if b.db, err = postgres.Open(ctx, b.url); err != nil {
		return nil, err
	}
	if b.registry, b.codec, err = avro.LoadPlatform(); err != nil {
		return nil, err
	}
	b.store, err = postgres.NewEventStore(b.db, postgres.EventStoreConfig{Codec: b.codec, Outbox: kafka.DomainMessages{Codec: b.codec}})
	return b, err
}

// close closes the database and drops it.
func (b *benchStore) close() error {
	var errs []error
	if b.db != nil {
		errs = append(errs, b.db.Close())
	}
	return errors.Join(append(errs, b.drop())...)
}
