package cohort_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
)

var (
	id, tenant = uuid.New(), uuid.New()
	now        = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
)

func fields(t *testing.T, err error) []string {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a validation error", err)
	}
	var out []string
	for _, v := range ve.Violations {
		out = append(out, v.Field)
	}
	return out
}

func TestCreate(t *testing.T) {
	members := cohort.Members{Generation: uuid.New(), Count: 3}
	got, err := cohort.Create(id, tenant, cohort.Definition{Name: " VIPs ", Kind: cohort.Static}, members, now)
	want := []domain.Event{cohort.Created{CohortID: id, TenantID: tenant, Name: "VIPs", Kind: cohort.Static, Members: members, CreatedAt: now}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Create(static) = %v, %v", got, err)
	}
	rule := "user.counts['PURCHASE'] >= 3 && user.amounts['PURCHASE'] >= 1000.0"
	if _, err := cohort.Create(id, tenant, cohort.Definition{Name: "Buyers", Kind: cohort.Dynamic, Rule: rule}, cohort.Members{}, now); err != nil {
		t.Fatalf("Create(dynamic): %v", err)
	}
	tests := []struct {
		name    string
		def     cohort.Definition
		members cohort.Members
		want    []string
	}{
		{"static without members", cohort.Definition{Name: "x", Kind: cohort.Static}, cohort.Members{}, []string{"userIds"}},
		{"static with a rule", cohort.Definition{Name: "x", Kind: cohort.Static, Rule: "true"}, members, []string{"rule"}},
		{"too many", cohort.Definition{Name: "x", Kind: cohort.Static}, cohort.Members{Generation: uuid.New(), Count: cohort.MaxStaticMembers + 1}, []string{"userIds"}},
		{"dynamic with members", cohort.Definition{Name: "x", Kind: cohort.Dynamic, Rule: "true"}, members, []string{"userIds"}},
		{"bad rule", cohort.Definition{Name: "x", Kind: cohort.Dynamic, Rule: "usr.total > 1"}, cohort.Members{}, []string{"rule"}},
		{"no name, bad kind", cohort.Definition{Kind: "SOME"}, cohort.Members{}, []string{"name", "kind"}},
	}
	for _, tt := range tests {
		_, err := cohort.Create(id, tenant, tt.def, tt.members, now)
		if got := fields(t, err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: violations of %v, want %v (%v)", tt.name, got, tt.want, err)
		}
	}
}

func TestRecomputeOnlyDynamic(t *testing.T) {
	job, members := uuid.New(), cohort.Members{Generation: uuid.New(), Count: 10}
	dynamic, _ := cohort.Rehydrate([]domain.Event{cohort.Created{CohortID: id, TenantID: tenant, Name: "d", Kind: cohort.Dynamic, Rule: "true", CreatedAt: now}})
	got, err := dynamic.Recompute(job, members, now.Add(time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("Recompute = %v, %v", got, err)
	}
	dynamic.Apply(got[0])
	if dynamic.Members() != members || !dynamic.ComputedAt().Equal(now.Add(time.Hour)) || dynamic.Version() != 2 {
		t.Fatalf("after Recomputed: %+v", dynamic)
	}
	static, _ := cohort.Rehydrate([]domain.Event{cohort.Created{CohortID: id, TenantID: tenant, Name: "s", Kind: cohort.Static, Members: members, CreatedAt: now}})
	if _, err := static.Recompute(job, members, now); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("recompute a static cohort: %v", err)
	}
}

func TestValidateUserID(t *testing.T) {
	for id, ok := range map[string]bool{"u-42": true, "": false, strings.Repeat("x", 129): false, "a\nb": false, "\xff": false, "ユーザー": true} {
		if got := cohort.ValidateUserID(id) == ""; got != ok {
			t.Errorf("ValidateUserID(%q) ok = %v, want %v", id, got, ok)
		}
	}
}

func TestRecomputeRecordsAJobOnce(t *testing.T) {
	job := uuid.New()
	c, _ := cohort.Rehydrate([]domain.Event{cohort.Created{CohortID: id, TenantID: tenant, Name: "d", Kind: cohort.Dynamic, Rule: "true", CreatedAt: now}})
	if err := c.Recomputable(); err != nil || c.LastJob() != uuid.Nil {
		t.Fatalf("new dynamic cohort: Recomputable() = %v, LastJob() = %v", err, c.LastJob())
	}
	first, err := c.Recompute(job, cohort.Members{Generation: uuid.New(), Count: 1}, now)
	if err != nil || len(first) != 1 {
		t.Fatalf("Recompute = %v, %v", first, err)
	}
	c.Apply(first[0])
	// The runner crashed after recording and runs the job again with a new set.
	again, err := c.Recompute(job, cohort.Members{Generation: uuid.New(), Count: 2}, now.Add(time.Minute))
	if err != nil || len(again) != 0 || c.LastJob() != job {
		t.Fatalf("recompute of a recorded job = %v, %v (last job %v)", again, err, c.LastJob())
	}
}
