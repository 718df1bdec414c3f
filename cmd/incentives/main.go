// Command incentives is the whole platform in one binary:
//
//	incentives serve     run the platform (roles api, engine, projector, relay, dcm)
//	incentives migrate   apply database migrations
//	incentives token     print a signed development JWT
//	incentives broker    run the embedded Kafka-protocol broker alone
//	incentives tail      print a topic's records as JSON lines
//	incentives loadgen   produce realistic action events, for load tests
//	incentives version   print the build version
//
// Every setting is an environment variable and a flag of the same name
// (DATABASE_URL is --database-url); flags win. `incentives <command> --help`
// lists them with their defaults.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
