package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A process without the api role (an engine on its own) still answers
// /metrics and /healthz on HTTP_ADDR, so a scaled-out platform can be
// scraped and probed process by process.
func TestProcessWithoutTheAPIServesMetricsAndHealth(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Roles = roleEngine
	p := startPlatform(t, cfg)
	base := "http://" + p.app.OpsAddr()
	for path, want := range map[string]string{"/healthz": `"ok"`, "/metrics": "incentives_engine_batch_retries_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
	}
}
