package domain

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors the platform's decisions and stores return. Callers test them with
// errors.Is; adapters translate them to their protocol in exactly one place
// (problem+json in adapters/http).
var (
	// ErrNotFound: the named thing does not exist, or the caller may not know
	// that it exists (another tenant's resource is "not found", never "forbidden").
	ErrNotFound = errors.New("not found")

	// ErrVersionConflict: the stream moved on since the caller read it; a
	// stale expected version never overwrites anything. Reload and retry.
	ErrVersionConflict = errors.New("version conflict")

	// ErrInvalidTransition: the aggregate's lifecycle does not allow the
	// command in its current state (suspending a suspended tenant).
	ErrInvalidTransition = errors.New("invalid state transition")
)

// Violation is one reason an input was refused.
type Violation struct {
	// Field is the input's name as the caller wrote it ("name", "rule.steps[1].count").
	Field string
	// Message says what is wrong, for a person.
	Message string
}

// ValidationError refuses an input for one or more reasons. Decide functions
// return it before recording anything.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Validator collects violations so a caller hears about every problem at once.
type Validator struct {
	violations []Violation
}

// Add records a violation of field.
func (v *Validator) Add(field, message string) {
	v.violations = append(v.violations, Violation{field, message})
}

// Check records message for field unless ok.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.Add(field, message)
	}
}

// Err returns a *ValidationError holding every violation, or nil if there was none.
func (v *Validator) Err() error {
	if len(v.violations) == 0 {
		return nil
	}
	return &ValidationError{Violations: v.violations}
}

// StorableText reports whether s can be stored as text: valid UTF-8 without
// NUL, which PostgreSQL's text and jsonb refuse. Input that fails it must be
// refused where it enters, never discovered by the first database write
// (for an event, by a projection that could then never apply it).
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
