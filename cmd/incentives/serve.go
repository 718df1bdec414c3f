package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

func runServe(ctx context.Context, env environment, args []string) error {
	var cfg Config
	fs := newFlagSet(env, "serve", "serve [flags]")
	b := newBinder(fs, env.getenv)
	cfg.bind(b)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := b.err(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := cfg.newLogger(env)
	if cfg.JWTSecret == devJWTSecret {
		logger.Warn("AUTH_JWT_SECRET is the built-in development secret: anyone can mint tokens; set your own outside development")
	}
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := app.Close(); err != nil {
			logger.Error("close", "err", err)
		}
	}()
	go func() {
		select {
		case <-app.Ready():
			printBanner(env.stdout, &cfg, app)
			logger.Info("platform ready", "roles", cfg.Roles, "http", app.HTTPAddr(), "kafka", strings.Join(app.Brokers(), ","))
		case <-ctx.Done():
		}
	}()
	err = app.Run(ctx)
	logger.Info("platform stopped", "err", err)
	return err
}

// printBanner tells a newcomer where everything is and what to try first.
func printBanner(w io.Writer, cfg *Config, app *App) {
	bin := os.Args[0]
	if strings.Contains(bin, "go-build") {
		bin = "go run ./cmd/incentives"
	}
	fmt.Fprintln(w, "\nIncentives platform is up (roles: "+cfg.Roles+").")
	if ops := app.OpsAddr(); ops != "" {
		base := "http://" + displayAddr(ops)
		fmt.Fprintf(w, "  Metrics   %s/metrics      health %s/healthz\n", base, base)
	}
	if addr := app.HTTPAddr(); addr != "" {
		base := "http://" + displayAddr(addr)
		fmt.Fprintf(w, "  API       %s/api/v1      health %s/healthz   readiness %s/readyz\n", base, base, base)
		fmt.Fprintf(w, "  Metrics   %s/metrics      OpenAPI %s/openapi.json\n", base, base)
		kind := "external"
		if app.broker != nil {
			kind = "embedded, in memory: gone when this process stops"
		}
		if ws := app.WSAddr(); ws != "" {
			wsBase := displayAddr(ws)
			fmt.Fprintf(w, "  WebSocket ws://%s/ws      demo page http://%s/ws/demo\n", wsBase, wsBase)
		}
		fmt.Fprintf(w, "  Kafka     %s (%s)\n", strings.Join(app.Brokers(), ","), kind)
		fmt.Fprintf(w, "\nTry it (in another terminal):\n")
		fmt.Fprintf(w, "  export TOKEN=$(%s token --role platform-admin)\n", bin)
		fmt.Fprintf(w, "  curl -s -X POST %s/api/v1/tenants -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{\"name\":\"Acme\"}'\n", base)
		// tail looks for the broker where the default configuration puts it.
		tailEnv := ""
		if brokers := strings.Join(app.Brokers(), ","); brokers != defaultEmbeddedAddr {
			tailEnv = "KAFKA_BROKERS=" + brokers + " "
		}
		fmt.Fprintf(w, "  %s%s tail ic.domain.tenant\n\n", tailEnv, bin)
	}
}

// displayAddr turns a listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
