package http_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/incentives-platform/incentives/adapters/auth"
	httpapi "github.com/incentives-platform/incentives/adapters/http"
	enginecmd "github.com/incentives-platform/incentives/commands/engine"
	"github.com/incentives-platform/incentives/domain/engine"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/projections"
)

// fakeDecisions answers every query with its records and remembers the last.
type fakeDecisions struct {
	records []enginecmd.RecordedDecision
	got     struct {
		tenantID, campaignID uuid.UUID
		userID               string
		outcome              engine.Outcome
		before               projections.TenantKey
		limit                int
	}
}

func (f *fakeDecisions) UserDecisions(_ context.Context, tenantID uuid.UUID, userID string, campaignID uuid.UUID, outcome engine.Outcome,
	before projections.TenantKey, limit int) ([]enginecmd.RecordedDecision, error) {
	f.got.tenantID, f.got.userID, f.got.campaignID, f.got.outcome, f.got.before, f.got.limit = tenantID, userID, campaignID, outcome, before, limit
	if limit < len(f.records) {
		return f.records[:limit], nil
	}
	return f.records, nil
}

func TestListUserDecisions(t *testing.T) {
	t.Parallel()
	authn, err := auth.New([]byte("0123456789abcdef0123456789abcdef"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	token := func(role auth.Role, tenant uuid.UUID) string {
		tok, err := authn.Issue(auth.Principal{Subject: "t", Role: role, TenantID: tenant}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	acme, campaignID := uuid.New(), uuid.New()
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	issued := engine.Decision{ID: uuid.New(), TenantID: acme, UserID: "a/b ü", CampaignID: campaignID, CampaignVer: 3, SourceEventID: uuid.New(),
		Outcome: engine.OutcomeIssued, DecidedAt: at.Add(time.Minute),
		Reward: &engine.Reward{Type: rules.RewardCashback, Currency: "INR", Amount: decimal.RequireFromString("12.7500")},
		Inputs: map[string]any{"payload": map[string]any{"amount": json.Number("255.5")}}}
	refusedBy := enginecmd.LimitCounter{Scope: "USER", Kind: "DAY", Cap: 1, Seen: 1}
	limited := issued
	limited.ID, limited.Outcome, limited.Reason, limited.DecidedAt = uuid.New(), engine.OutcomeLimited, "USER DAY limit of 1 reached", at
	falsy := engine.Decision{ID: uuid.New(), TenantID: acme, UserID: "a/b ü", CampaignID: campaignID, CampaignVer: 3, SourceEventID: uuid.New(),
		Outcome: engine.OutcomeConditionFalse, DecidedAt: at}
	fake := &fakeDecisions{records: []enginecmd.RecordedDecision{
		{Decision: issued, Limits: &enginecmd.LimitAnswer{Granted: true, Counters: []enginecmd.LimitCounter{{Scope: "USER", Kind: "DAY", Cap: 1}}}},
		{Decision: limited, Limits: &enginecmd.LimitAnswer{RefusedBy: &refusedBy, Counters: []enginecmd.LimitCounter{refusedBy}}},
		{Decision: falsy},
	}}
	r := httpapi.RoutesForTest(httpapi.Deps{Decisions: fake, Verifier: authn, Observer: nopObserver{}, Logger: slog.New(slog.DiscardHandler)})
	doc, raw := servedDocument(t, r)
	answers := newAnswerChecker(t, doc, raw)
	op := oasOperation{"GET", "/api/v1/tenants/{tenantId}/users/{userId}/decisions"}
	path := "/api/v1/tenants/" + acme.String() + "/users/" + url.PathEscape("a/b ü") + "/decisions"
	serve := func(tok, target string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		answers.check(op, rec)
		return rec
	}

	before := projections.TenantKey{CreatedAt: at.Add(time.Hour), ID: uuid.New()}
	cursor := cursorOf(t, r, token(auth.RoleTenantAdmin, acme), path, fake, before)
	rec := serve(token(auth.RoleTenantAdmin, acme), path+"?limit=2&outcome=LIMITED&campaignId="+campaignID.String()+"&cursor="+cursor)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET = %d %s", rec.Code, rec.Body)
	}
	g := fake.got
	if g.tenantID != acme || g.userID != "a/b ü" || g.campaignID != campaignID || g.outcome != engine.OutcomeLimited || g.limit != 3 ||
		!g.before.CreatedAt.Equal(before.CreatedAt) || g.before.ID != before.ID {
		t.Errorf("query asked %+v", g)
	}
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"nextCursor"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("page of 2 of 3: %s", rec.Body)
	}
	first, _ := json.Marshal(page.Items[0])
	want := `{"campaignId":"` + campaignID.String() + `","campaignVersion":3,"decidedAt":"2026-03-14T10:01:00Z","decisionId":"` + issued.ID.String() +
		`","incentiveId":"` + engine.IncentiveID(issued.ID).String() + `","inputs":{"payload":{"amount":255.5}},` +
		`"limits":{"counters":[{"cap":1,"kind":"DAY","scope":"USER","seen":0}],"granted":true,"refusedBy":null},"outcome":"ISSUED","reason":"",` +
		`"reward":{"amount":"12.75","currency":"INR","type":"CASHBACK"},"sourceEventId":"` + issued.SourceEventID.String() + `"}`
	if string(first) != want {
		t.Errorf("first item\n%s\nwant\n%s", first, want)
	}
	if page.Items[1]["incentiveId"] != nil || page.Items[1]["reason"] != "USER DAY limit of 1 reached" {
		t.Errorf("LIMITED item %v", page.Items[1])
	}
	rec = serve(token(auth.RolePlatformAdmin, uuid.Nil), path)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"inputs":{},"limits":null`) || strings.Contains(rec.Body.String(), "nextCursor") {
		t.Errorf("platform admin, all: %d %s", rec.Code, rec.Body)
	}
	if fake.got.limit != 51 || fake.got.before != (projections.TenantKey{}) || fake.got.outcome != "" || fake.got.campaignID != uuid.Nil {
		t.Errorf("defaults asked %+v", fake.got)
	}

	for _, tc := range []struct {
		name, token, target string
		status              int
	}{
		{"another tenant's admin", token(auth.RoleTenantAdmin, uuid.New()), path, 404},
		{"a user", token(auth.RoleUser, acme), path, 403},
		{"a space is a user id", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users/%20/decisions", 200},
		{"empty user id", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users//decisions", 400},
		{"user id too long", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users/" + strings.Repeat("u", 129) + "/decisions", 400},
		{"control character", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users/a%0Ab/decisions", 400},
		{"escaped control character", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users/a%2F%0A/decisions", 400},
		{"invalid UTF-8", token(auth.RoleTenantAdmin, acme), "/api/v1/tenants/" + acme.String() + "/users/a%FF/decisions", 400},
		{"limit", token(auth.RoleTenantAdmin, acme), path + "?limit=0", 400},
		{"outcome", token(auth.RoleTenantAdmin, acme), path + "?outcome=limited", 400},
		{"campaignId", token(auth.RoleTenantAdmin, acme), path + "?campaignId=x", 400},
		{"cursor", token(auth.RoleTenantAdmin, acme), path + "?cursor=x", 400},
	} {
		if rec := serve(tc.token, tc.target); rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.status)
		}
	}
}

// cursorOf gets the API to write the cursor of key: the page of one item
// ending at a record with key's time and id.
func cursorOf(t *testing.T, r http.Handler, tok, path string, fake *fakeDecisions, key projections.TenantKey) string {
	t.Helper()
	saved := fake.records
	defer func() { fake.records = saved }()
	d := enginecmd.RecordedDecision{Decision: engine.Decision{ID: key.ID, DecidedAt: key.CreatedAt}}
	fake.records = []enginecmd.RecordedDecision{d, d}
	req := httptest.NewRequest(http.MethodGet, path+"?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	var page struct {
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || page.NextCursor == "" {
		t.Fatalf("no cursor: %d %s", rec.Code, rec.Body)
	}
	return page.NextCursor
}
