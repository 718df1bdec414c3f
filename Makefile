# The two commands a newcomer needs: `make run` and `make test`.
# Both first make sure PostgreSQL and Redis are up (scripts/services.sh).

GO      ?= go
BIN     := bin/incentives
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build services chromium bench lint clean

## run: start the whole platform in one process (API, projections, relay, embedded Kafka)
run: services build
	./$(BIN) serve --migrate

## test: the full suite, against real PostgreSQL, Redis and the embedded Kafka broker over TCP
test: services chromium lint
	$(GO) test -race -count=1 -timeout 15m ./...

## build: compile bin/incentives
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/incentives

## services: make sure PostgreSQL and Redis answer (start or install them if needed)
services:
	@scripts/services.sh

## chromium: make sure headless Chromium is there for the /ws/demo browser test
chromium:
	@scripts/chromium.sh

## bench: run the benchmarks and write their figures into BENCHMARKS.md
bench: services
	$(GO) run ./bench -write BENCHMARKS.md

## lint: formatting and vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
