package rules

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"

	"github.com/incentives-platform/incentives/domain"
)

// MaxConditionLength bounds a condition's source.
const MaxConditionLength = 2000

// conditionCostLimit bounds the work one evaluation may do: enough for any
// reasonable predicate over a payload, too little for a runaway comprehension.
const conditionCostLimit = 10_000

// Condition is a compiled CEL predicate over one action event, which it sees
// as the map `event` with keys tenantId, userId, actionCode, eventTs (a
// timestamp) and payload (the event's JSON object): `event.payload.amount >= 100`.
// The zero Condition matches every event.
type Condition struct {
	source  string
	program cel.Program
}

// Source returns the condition as written, or "" for the zero Condition.
func (c Condition) Source() string { return c.source }

// IsZero reports whether c is the always-true zero Condition.
func (c Condition) IsZero() bool { return c.program == nil }

// ErrConditionFailed wraps a condition that could not be evaluated for an
// event (a missing payload field, a type mismatch, the cost limit): the event
// does not match, and the reason is worth recording.
var ErrConditionFailed = errors.New("condition failed")

// Matches evaluates c against an event: vars must hold the key "event".
func (c Condition) Matches(vars map[string]any) (bool, error) {
	if c.program == nil {
		return true, nil
	}
	out, _, err := c.program.Eval(vars)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrConditionFailed, c.source, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: %s: gave %v, not true or false", ErrConditionFailed, c.source, out.Value())
	}
	return b, nil
}

// env builds the CEL environment of a variable of type map(string, dyn) once;
// a cel.Env is immutable and safe for concurrent use.
func env(variable string) func() (*cel.Env, error) {
	return sync.OnceValues(func() (*cel.Env, error) {
		return cel.NewEnv(cel.Variable(variable, cel.MapType(cel.StringType, cel.DynType)))
	})
}

var eventEnv = env("event")

// compileCondition compiles source for the event environment. It returns
// the problems as messages that say where, for the caller to attach to a field.
func compileCondition(source string) (Condition, []string) {
	e, err := eventEnv()
	if err != nil {
		return Condition{}, []string{"the condition language is unavailable: " + err.Error()}
	}
	return compile(e, source)
}

func compile(e *cel.Env, source string) (Condition, []string) {
	if strings.TrimSpace(source) == "" {
		return Condition{}, []string{"must not be blank (leave it out to match every event)"}
	}
	if len(source) > MaxConditionLength {
		return Condition{}, []string{fmt.Sprintf("must be at most %d characters", MaxConditionLength)}
	}
	if !domain.StorableText(source) {
		return Condition{}, []string{"must be UTF-8 text without NUL characters"}
	}
	ast, iss := e.Compile(source)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, ce := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("line %d, column %d: %s", ce.Location.Line(), ce.Location.Column()+1, ce.Message))
		}
		return Condition{}, msgs
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return Condition{}, []string{fmt.Sprintf("must be true or false, but gives %s", t)}
	}
	prg, err := e.Program(ast, cel.CostLimit(conditionCostLimit))
	if err != nil {
		return Condition{}, []string{err.Error()}
	}
	return Condition{source: source, program: prg}, nil
}

var userEnv = env("user")

// CompileUserCondition compiles a dynamic cohort's rule, a CEL predicate over
// one user's recorded actions, which it sees as the map `user` with keys
// userId, total (number of actions), counts (actions by code), amounts (the
// sum of payload.amount by code), firstSeen and lastSeen (timestamps):
// `user.counts['PURCHASE'] >= 3 && user.amounts['PURCHASE'] >= 1000.0`.
// It returns a *domain.ValidationError of field for a bad rule.
func CompileUserCondition(field, source string) (Condition, error) {
	e, err := userEnv()
	if err != nil {
		return Condition{}, err
	}
	c, problems := compile(e, source)
	var v domain.Validator
	for _, p := range problems {
		v.Add(field, p)
	}
	return c, v.Err()
}
