package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/cohort"
	"github.com/incentives-platform/incentives/domain/tenant"
)

// CohortSpec is what a cohort's creator writes besides the member list.
type CohortSpec struct {
	// TenantID is the tenant the cohort is for, as the request names it;
	// uuid.Nil if it names none.
	TenantID   uuid.UUID
	Definition cohort.Definition
	// HasUserIDs says the request carried a member list, even an empty one.
	HasUserIDs bool
}

// CreateCohort defines a cohort of a tenant's users.
//
// A STATIC cohort's list can hold a million ids, more than a request should
// hold in memory, and its fields can come in any order (the list before the
// name), so the command does not carry them: Read reads them from their
// source while the handler stores the ids as they arrive.
type CreateCohort struct {
	// CohortID is chosen by the caller (the API generates it), so a retried
	// command cannot create a second cohort.
	CohortID uuid.UUID
	// TenantID is the tenant the caller acts for: its own for a tenant
	// admin, uuid.Nil for a platform admin, who names the tenant in the spec.
	TenantID uuid.UUID
	// Read is called once. It reads the command, passes the member ids to
	// add a batch at a time as it reads them (add keeps nothing of a batch,
	// so Read may reuse it) and returns the rest. It must stop and return
	// add's error if add fails.
	Read func(ctx context.Context, add func(userIDs []string) error) (CohortSpec, error)
}

// CohortFromList returns a CreateCohort.Read that gives spec and, if
// userIDs is not nil, that list.
func CohortFromList(spec CohortSpec, userIDs []string) func(context.Context, func([]string) error) (CohortSpec, error) {
	return func(_ context.Context, add func([]string) error) (CohortSpec, error) {
		if userIDs != nil {
			spec.HasUserIDs = true
			if err := add(userIDs); err != nil {
				return CohortSpec{}, err
			}
		}
		return spec, nil
	}
}

// CreateCohortHandler handles CreateCohort.
type CreateCohortHandler struct {
	store   EventStore
	clock   Clock
	members MemberSets
	jobs    CohortJobQueue
}

// NewCreateCohortHandler returns the handler; it panics on a nil dependency.
func NewCreateCohortHandler(store EventStore, clock Clock, members MemberSets, jobs CohortJobQueue) CreateCohortHandler {
	if store == nil || clock == nil || members == nil || jobs == nil {
		panic("commands: NewCreateCohortHandler needs a store, a clock, member sets and a job queue")
	}
	return CreateCohortHandler{store: store, clock: clock, members: members, jobs: jobs}
}

// discardTimeout bounds the deletion of a refused command's member set,
// which runs even if the request that brought it has gone.
const discardTimeout = time.Minute

// Handle stores a STATIC cohort's member set, then records the cohort naming
// it; a DYNAMIC cohort's first computation is queued. Errors:
// *domain.ValidationError (bad input, including a member id, reported with
// its index, or a tenant the caller may not use), domain.ErrVersionConflict
// (the cohort id is taken), and whatever Read returns. A refused command
// leaves no member set behind.
func (h CreateCohortHandler) Handle(ctx context.Context, cmd CreateCohort) (*cohort.Cohort, error) {
	generation := uuid.New()
	var (
		written bool
		read    int // ids read, for the index of a bad one
		count   int64
	)
	add := func(ids []string) error {
		for i, id := range ids {
			if msg := cohort.ValidateUserID(id); msg != "" {
				return invalid(fmt.Sprintf("userIds[%d]", read+i), msg)
			}
		}
		read += len(ids)
		written = true
		n, err := h.members.Add(ctx, generation, ids)
		if err != nil {
			return fmt.Errorf("store members of cohort %s: %w", cmd.CohortID, err)
		}
		if count += n; count > cohort.MaxStaticMembers {
			return invalid("userIds", fmt.Sprintf("must hold at most %d distinct ids", cohort.MaxStaticMembers))
		}
		return nil
	}
	spec, err := cmd.Read(ctx, add)
	var c *cohort.Cohort
	if err == nil {
		var members cohort.Members
		if spec.HasUserIDs {
			members = cohort.Members{Generation: generation, Count: count}
		}
		c, err = h.create(ctx, cmd, spec, members)
	}
	if err != nil {
		if written {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
			defer cancel()
			err = errors.Join(err, h.members.Delete(dctx, generation))
		}
		return nil, err
	}
	return c, nil
}

func (h CreateCohortHandler) create(ctx context.Context, cmd CreateCohort, spec CohortSpec, members cohort.Members) (*cohort.Cohort, error) {
	owner, tenantErr := h.owner(ctx, cmd.TenantID, spec.TenantID)
	if tenantErr != nil && !isValidation(tenantErr) {
		return nil, tenantErr
	}
	now := h.clock.Now()
	events, err := cohort.Create(cmd.CohortID, owner, spec.Definition, members, now)
	if tenantErr != nil {
		// The domain sees no tenant and says one is required; the caller
		// gave one, and tenantErr says what is wrong with it.
		err = withoutField(err, "tenantId")
	}
	if err = joinViolations(tenantErr, err); err != nil {
		return nil, err
	}
	if _, err := h.store.Append(ctx, metadata(ctx, owner),
		domain.StreamAppend{Stream: cohort.Stream(cmd.CohortID), ExpectedVersion: 0, Events: events}); err != nil {
		return nil, err
	}
	c, err := cohort.Rehydrate(events)
	if err != nil {
		return nil, err
	}
	if spec.Definition.Kind == cohort.Dynamic {
		// The cohort is recorded whatever happens here: failing the command
		// now would invite a retry that creates a second cohort. A cohort
		// never computed and without a job is queued by the job runner's
		// schedule instead.
		_, _ = h.jobs.Enqueue(ctx, CohortJob{JobID: uuid.New(), CohortID: c.ID(), TenantID: owner, Status: JobQueued, CreatedAt: now})
	}
	return c, nil
}

// owner decides whose cohort it is. A tenant admin's cohort is its own
// tenant's; naming another tenant reads as naming one that does not exist,
// since other tenants are not the caller's to know. A platform admin names
// an existing tenant. A bad choice is a *domain.ValidationError of tenantId;
// a missing one is left to cohort.Create to report.
func (h CreateCohortHandler) owner(ctx context.Context, acting, named uuid.UUID) (uuid.UUID, error) {
	owner := named
	switch {
	case acting != uuid.Nil && named == uuid.Nil:
		owner = acting
	case acting != uuid.Nil && named != acting:
		return uuid.Nil, invalid("tenantId", "no such tenant")
	case owner == uuid.Nil:
		return uuid.Nil, nil
	}
	_, version, err := h.store.Load(ctx, tenant.Stream(owner))
	if err != nil {
		return uuid.Nil, fmt.Errorf("load tenant %s: %w", owner, err)
	}
	if version == 0 {
		return uuid.Nil, invalid("tenantId", "no such tenant")
	}
	return owner, nil
}

func invalid(field, message string) error {
	return &domain.ValidationError{Violations: []domain.Violation{{Field: field, Message: message}}}
}

func isValidation(err error) bool {
	var ve *domain.ValidationError
	return errors.As(err, &ve)
}

// joinViolations merges validation errors into one that lists every
// violation; any other error wins.
func joinViolations(errs ...error) error {
	var v domain.Validator
	for _, err := range errs {
		var ve *domain.ValidationError
		switch {
		case err == nil:
		case errors.As(err, &ve):
			for _, viol := range ve.Violations {
				v.Add(viol.Field, viol.Message)
			}
		default:
			return err
		}
	}
	return v.Err()
}

// withoutField drops the violations of field from a *domain.ValidationError.
func withoutField(err error, field string) error {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var v domain.Validator
	for _, viol := range ve.Violations {
		if viol.Field != field {
			v.Add(viol.Field, viol.Message)
		}
	}
	return v.Err()
}
