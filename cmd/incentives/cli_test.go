package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	"github.com/incentives-platform/incentives/adapters/avro"
	"github.com/incentives-platform/incentives/adapters/postgres/pgtest"
	"github.com/incentives-platform/incentives/migrations"
)

// runCLI runs the binary's entry point in-process with env as its environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	code, out, errOut := runCLI(t, nil, "token", "--role", "tenant-admin", "--tenant", tenant.String(), "--user", "alice", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p, err := mustAuthenticator(t, devJWTSecret).Verify(strings.TrimSpace(out))
	if left := time.Until(p.ExpiresAt); err != nil || left < 4*time.Minute || left > 5*time.Minute {
		t.Fatalf("token of --ttl 5m expires in %v (%v)", left, err)
	}
	p.ExpiresAt = time.Time{}
	if err != nil || p != (auth.Principal{Subject: "alice", TenantID: tenant, Role: auth.RoleTenantAdmin}) {
		t.Fatalf("token verifies to %+v, %v", p, err)
	}
	// A token signed with another AUTH_JWT_SECRET does not verify with the default.
	_, other, _ := runCLI(t, map[string]string{"AUTH_JWT_SECRET": strings.Repeat("s", 40)}, "token", "--role", "platform-admin")
	if _, err := mustAuthenticator(t, devJWTSecret).Verify(strings.TrimSpace(other)); err == nil {
		t.Fatal("a token from another secret verified")
	}
	for _, args := range [][]string{
		{"token"},
		{"token", "--role", "root"},
		{"token", "--role", "user"},
		{"token", "--role", "tenant-admin", "--tenant", "acme"},
		{"token", "--role", "platform-admin", "--ttl", "-1h"},
	} {
		if code, _, errOut := runCLI(t, nil, args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d with %q, want a failure that says why", args, code, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env      map[string]string
		args     []string
		code     int
		mentions string
	}{
		{nil, nil, 2, "Usage"},
		{nil, []string{"frobnicate"}, 2, "unknown command"},
		{nil, []string{"serve", "--no-such-flag"}, 2, "no-such-flag"},
		{nil, []string{"serve", "extra"}, 2, "unexpected arguments"},
		{map[string]string{"KAFKA_PARTITIONS": "many"}, []string{"serve"}, 1, "KAFKA_PARTITIONS"},
		{map[string]string{"MIGRATE": "perhaps"}, []string{"serve"}, 1, "MIGRATE"},
		{nil, []string{"serve", "--roles", "api,engine2"}, 1, `unknown role "engine2"`},
		{nil, []string{"serve", "--auth-jwt-secret", "short"}, 1, "at least 32 bytes"},
		{nil, []string{"serve", "--log-level", "loud"}, 1, "LOG_LEVEL"},
		{nil, []string{"tail"}, 2, "TOPIC"},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, tt.env, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.mentions) {
			t.Errorf("%v %v: exit %d, stderr %q; want %d mentioning %q", tt.env, tt.args, code, errOut, tt.code, tt.mentions)
		}
	}
	if code, out, _ := runCLI(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "incentives ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestMigrateCreatesTheDatabase(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.MustUnusedDatabase(t), "LOG_LEVEL": "warn"}
	code, out, errOut := runCLI(t, env, "migrate")
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("applied %d migrations", len(files)); code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("first migrate: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := runCLI(t, env, "migrate"); code != 0 || !strings.HasPrefix(out, "applied 0 migrations") {
		t.Fatalf("second migrate: exit %d, %q", code, out)
	}
}

func TestServeExplainsAMissingDatabase(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	env := map[string]string{"DATABASE_URL": pgtest.MustUnusedDatabase(t), "KAFKA_EMBEDDED_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0",
		"REDIS_URL": cfg.RedisURL, "LOG_LEVEL": "warn"}
	code, _, errOut := runCLI(t, env, "serve")
	if code != 1 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "--migrate") {
		t.Fatalf("serve without a database: exit %d, %q", code, errOut)
	}
}

func TestTailPrintsDecodedRecords(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, testConfig(t))
	created := p.request("POST", "/api/v1/tenants", p.token(auth.RolePlatformAdmin, uuid.Nil), `{"name":"Tailed"}`)
	id := created.json(t)["tenantId"].(string)
	var line tailLine
	eventually(t, "tail shows the event", func() bool {
		code, out, errOut := runCLI(t, map[string]string{"KAFKA_BROKERS": strings.Join(p.app.Brokers(), ",")}, "tail", "ic.domain.tenant")
		if code != 0 {
			t.Fatalf("tail: exit %d: %s", code, errOut)
		}
		return out != "" && json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &line) == nil
	})
	var value map[string]any
	if err := json.Unmarshal(line.Value, &value); err != nil || line.Schema != "tenant.created.v1" || line.Key != id ||
		value["name"] != "Tailed" || line.Headers["event-type"] != "tenant.created.v1" {
		t.Fatalf("tail line %+v (value %v, %v)", line, value, err)
	}
	code, _, errOut := runCLI(t, map[string]string{"KAFKA_BROKERS": strings.Join(p.app.Brokers(), ",")}, "tail", "no.such.topic")
	if code != 1 || !strings.Contains(errOut, "no such topic") {
		t.Fatalf("tail of a missing topic: exit %d %q", code, errOut)
	}
}

// tail prints a value that is JSON but not Avro (a db.incentives change
// event) as the JSON it is, and anything else in base64.
func TestTailDecodesJSONValuesAsJSON(t *testing.T) {
	registry, _, err := avro.LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	change := []byte(`{"before":null,"after":{"incentive_id":"49989d7a-b454-532f-9c44-af12e4d32b59","reward_amount":"5.5200"},` +
		`"source":{"table":"incentive_view"},"op":"c","ts_ms":1795706951508}`)
	schema, value, raw, problem := decodeValue(registry, change)
	if schema != "" || !bytes.Equal(value, change) || raw != "" || problem != "" {
		t.Fatalf("decodeValue(change event) = %q, %s, %q, %q; want the JSON as it is", schema, value, raw, problem)
	}
	line, err := json.Marshal(tailLine{Topic: "db.incentives", Key: `{"incentive_id":"49989d7a-b454-532f-9c44-af12e4d32b59"}`, Value: value})
	if err != nil || !strings.Contains(string(line), `"value":{"before":null,"after":{`) {
		t.Fatalf("tail line %s, %v: want the value as a JSON object", line, err)
	}
	if schema, value, raw, _ := decodeValue(registry, []byte("not json")); schema != "" || value != nil || raw != "bm90IGpzb24=" {
		t.Fatalf("decodeValue(text) = %q, %s, %q; want base64", schema, value, raw)
	}
}
