package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
	httpapi "github.com/incentives-platform/incentives/adapters/http"
	"github.com/incentives-platform/incentives/adapters/jsonschema"
	"github.com/incentives-platform/incentives/adapters/metrics"
	"github.com/incentives-platform/incentives/adapters/postgres"
	"github.com/incentives-platform/incentives/commands"
)

// errPoolEmpty stops a run whose workers used up what they were given.
var errPoolEmpty = errors.New("pool empty")

const benchRule = `{"action":"PURCHASE","condition":"event.payload.amount >= 100 && event.payload.channel == 'app'",` +
	`"reward":{"type":"CASHBACK","currency":"INR","percent":"5","percentOf":"amount","maxAmount":"100"}}`

// runCampaigns measures the command API of issue #3: campaign create and
// activate through HTTP (auth, JSON, schema, CEL compile, event store and
// outbox) beside the same command called in-process, and the engine's
// campaign search over 10,000 campaigns.
func runCampaigns(ctx context.Context, o options) (string, error) {
	bs, err := openStore(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = bs.close() }()
	db, store := bs.db, bs.store
	ruleSchema, err := jsonschema.LoadRuleSchema()
	if err != nil {
		return "", err
	}
	// The last command of each timed run is cut off by its deadline; that is
	// not worth a log line.
	app := commands.NewApplication(commands.Dependencies{Store: store, Clock: commands.SystemClock{},
		TenantDefaults: commands.DefaultTenantDefaults(), Logger: slog.New(slog.DiscardHandler), Recorder: noRecorder{}, RuleSchema: ruleSchema,
		MemberSets: postgres.NewMemberSets(db), CohortJobs: postgres.NewCohortJobs(db)})
	authn, err := auth.New([]byte(strings.Repeat("b", 32)), time.Now)
	if err != nil {
		return "", err
	}
	api, err := httpapi.New(httpapi.Config{}, benchAPIDeps(app, db, authn))
	if err != nil {
		return "", err
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const maxClients = 16
	tenants := make([]uuid.UUID, maxClients)
	tokens := make([]string, maxClients)
	for i := range tenants {
		tenants[i] = uuid.New()
		if _, err := app.CreateTenant.Handle(ctx, commands.CreateTenant{TenantID: tenants[i], Name: fmt.Sprint("bench ", i)}); err != nil {
			return "", err
		}
		if tokens[i], err = authn.Issue(auth.Principal{Subject: "bench", Role: auth.RoleTenantAdmin, TenantID: tenants[i]}, time.Hour); err != nil {
			return "", err
		}
	}
	call := func(ctx context.Context, token, method, path, body string, want int) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != want {
			return "", fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b), nil
	}

	// Drafts created by the create runs are what the activate runs activate.
	drafts := make([][]uuid.UUID, maxClients)
	createHTTP := func(ctx context.Context, w int) error {
		body, err := call(ctx, tokens[w], "POST", "/api/v1/campaigns", `{"name":"Festive cashback","type":"SIMPLE","rule":`+benchRule+`}`, http.StatusCreated)
		if err != nil {
			return err
		}
		i := strings.Index(body, `"campaignId":"`) + len(`"campaignId":"`)
		drafts[w] = append(drafts[w], uuid.MustParse(body[i:i+36]))
		return nil
	}
	activateHTTP := func(ctx context.Context, w int) error {
		if len(drafts[w]) == 0 {
			return errPoolEmpty
		}
		id := drafts[w][0]
		drafts[w] = drafts[w][1:]
		_, err := call(ctx, tokens[w], "POST", "/api/v1/campaigns/"+id.String()+":activate", "", http.StatusOK)
		return err
	}
	createDirect := func(ctx context.Context, w int) error {
		id := uuid.New()
		_, err := app.CreateCampaign.Handle(ctx, commands.CreateCampaign{CampaignID: id, TenantID: tenants[w],
			Input: commands.CampaignInput{Name: "Festive cashback", Type: "SIMPLE", Rule: []byte(benchRule)}})
		if err == nil {
			drafts[w] = append(drafts[w], id)
		}
		return err
	}
	activateDirect := func(ctx context.Context, w int) error {
		if len(drafts[w]) == 0 {
			return errPoolEmpty
		}
		id := drafts[w][0]
		drafts[w] = drafts[w][1:]
		_, err := app.ActivateCampaign.Handle(ctx, commands.ActivateCampaign{TenantID: tenants[w], CampaignID: id})
		return err
	}

	t := &table{header: []string{"command", "path", "clients", "rate", "p50", "p99"}}
	measure := func(name, path string, clients int, op func(context.Context, int) error) error {
		r, err := timed(ctx, clients, o.duration, op)
		if err != nil && !errors.Is(err, errPoolEmpty) {
			return fmt.Errorf("%s: %w", name, err)
		}
		t.add(name, path, fmt.Sprint(clients), perSecond(r.rate()), ms(r.percentile(0.5)), ms(r.percentile(0.99)))
		return nil
	}
	for _, clients := range []int{1, maxClients} {
		for _, m := range []struct {
			name, path string
			op         func(context.Context, int) error
		}{
			{"create campaign", "in-process handler", createDirect},
			{"create campaign", "HTTP API", createHTTP},
			{"activate campaign", "in-process handler", activateDirect},
			{"activate campaign", "HTTP API", activateHTTP},
		} {
			if err := measure(m.name, m.path, clients, m.op); err != nil {
				return "", err
			}
		}
	}

	platform, err := authn.Issue(auth.Principal{Subject: "bench", Role: auth.RolePlatformAdmin}, time.Hour)
	if err != nil {
		return "", err
	}
	search, err := measureSearch(ctx, o, db, func(ctx context.Context, path string) error {
		_, err := call(ctx, platform, "GET", path, "", http.StatusOK)
		return err
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Command API: campaigns (issue #3)\n\n")
	fmt.Fprintf(&b, "Measured %s on %s, PostgreSQL on the same machine; `go run ./bench -only campaigns -write BENCHMARKS.md`, %v per figure. "+
		"Each client is the tenant admin of its own tenant. A create validates the rule against the JSON schema, compiles its CEL "+
		"condition, checks the tenant and appends the event with its outbox row; an activate loads the campaign (1 event) and appends one. "+
		"The in-process rows call the same command handler without HTTP, JWT or JSON: the difference is the API's cost.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), o.duration)
	b.WriteString(t.String())
	b.WriteString("\n")
	b.WriteString(search)
	return b.String(), nil
}

// measureSearch loads 10,000 campaigns across 100 tenants into the read
// model and measures the engine's campaign search through the API and as the
// bare query.
func measureSearch(ctx context.Context, o options, db *postgres.DB, get func(ctx context.Context, path string) error) (string, error) {
	actions := []string{"PURCHASE", "LOGIN", "REFERRAL", "SIGNUP", "SHARE", "REVIEW", "RENEW", "TOPUP"}
	// 10,000 campaigns over 100 tenants of their own (apart from the
	// clients' tenants above): tenant i%100 gets campaign i; half ACTIVE.
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO campaign (campaign_id, tenant_id, name, type, status, rule_json, created_at, updated_at, version)
		SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad((i % 100)::text, 12, '0'))::uuid,
		       'c' || i, 'SIMPLE', (ARRAY['ACTIVE','PAUSED','DRAFT','ACTIVE'])[1 + (i / 100) % 4],
		       jsonb_build_object('action', ($1::text[])[1 + (i / 400) % 8], 'reward', '{"type":"POINTS","currency":"POINTS","amount":"1"}'::jsonb),
		       now(), now(), 1
		FROM generate_series(0, 9999) i`, actions); err != nil {
		return "", err
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE campaign`); err != nil {
		return "", err
	}
	campaigns := postgres.NewCampaigns(db)
	// Each call asks the next tenant and action.
	var calls atomic.Int64
	next := func() (uuid.UUID, string) {
		i := int(calls.Add(1))
		return uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", i%100)), actions[i%len(actions)]
	}
	direct := func(ctx context.Context, _ int) error {
		tenant, action := next()
		_, err := campaigns.SearchCampaigns(ctx, tenant, action, time.Now())
		return err
	}
	t := &table{header: []string{"search", "clients", "rate", "p50", "p99"}}
	for _, clients := range []int{1, 16} {
		r, err := timed(ctx, clients, o.duration, direct)
		if err != nil {
			return "", err
		}
		t.add("`SearchCampaigns` query (the read model, no HTTP)", fmt.Sprint(clients), perSecond(r.rate()), ms(r.percentile(0.5)), ms(r.percentile(0.99)))
		r, err = timed(ctx, clients, o.duration, func(ctx context.Context, _ int) error {
			tenant, action := next()
			return get(ctx, "/api/v1/campaigns/search?tenantId="+tenant.String()+"&action="+action)
		})
		if err != nil {
			return "", err
		}
		t.add("`GET /api/v1/campaigns/search` (platform admin)", fmt.Sprint(clients), perSecond(r.rate()), ms(r.percentile(0.5)), ms(r.percentile(0.99)))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Campaign search (the engine's lookup, ProjectLLD.md §4) over 10,000 campaigns across 100 tenants (100 each, half of them "+
		"ACTIVE, about 6 active ones for each tenant and action), after `VACUUM ANALYZE`; each call asks another tenant and action:\n\n")
	b.WriteString(t.String())
	return b.String(), nil
}

// benchAPIDeps wires the API as serve does, with a fresh metrics registry.
func benchAPIDeps(app commands.Application, db *postgres.DB, authn *auth.Authenticator) httpapi.Deps {
	m := metrics.New()
	return httpapi.Deps{Commands: app, Tenants: postgres.NewTenants(db), Campaigns: postgres.NewCampaigns(db),
		Verifier: authn, Observer: m, Logger: slog.New(slog.DiscardHandler), Idempotency: postgres.NewIdempotency(db),
		Cohorts: postgres.NewCohortReads(db), Decisions: postgres.NewDecisions(db)}
}
