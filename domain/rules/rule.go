package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/incentives-platform/incentives/domain"
)

// Kind is the shape of a rule, the same as its campaign's type.
type Kind string

// Rule kinds.
const (
	Simple Kind = "SIMPLE"
	Quest  Kind = "QUEST"
)

// Limits of a rule.
const (
	MaxSteps      = 10
	MaxStepCount  = 1000
	MaxWindowDays = 366
)

var actionCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// Step is one step of a quest: Count events of Action matching Condition.
type Step struct {
	Action    string
	Count     int
	Condition Condition
}

// Rule is what a campaign rewards. SIMPLE rules reward every event of Action
// that matches Condition. QUEST rules reward once, when a user has done every
// step (in order if Ordered) within WindowDays of the first counted event (0:
// the campaign's whole life).
type Rule struct {
	Kind       Kind
	Action     string
	Condition  Condition
	Steps      []Step
	Ordered    bool
	WindowDays int
	Reward     Reward
}

// Actions returns the action codes the rule listens to, sorted, once each.
func (r Rule) Actions() []string {
	if r.Kind == Simple {
		return []string{r.Action}
	}
	var out []string
	for _, s := range r.Steps {
		if !slices.Contains(out, s.Action) {
			out = append(out, s.Action)
		}
	}
	sort.Strings(out)
	return out
}

// Parse reads a rule document of the given kind. It returns a
// *domain.ValidationError naming every field at fault, under "rule.".
func Parse(kind Kind, doc []byte) (Rule, error) {
	var v domain.Validator
	r := parse(&v, kind, doc)
	if err := v.Err(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func parse(v *domain.Validator, kind Kind, doc []byte) Rule {
	const path = "rule"
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil || dec.More() {
		v.Add(path, "must be one JSON object")
		return Rule{}
	}
	obj, ok := object(v, path, raw)
	if !ok {
		return Rule{}
	}
	r := Rule{Kind: kind}
	switch kind {
	case Simple:
		known(v, path, obj, "action", "condition", "reward")
		r.Action = action(v, path+".action", obj["action"])
		r.Condition = condition(v, path+".condition", obj["condition"])
		r.Reward = parseReward(v, path+".reward", obj["reward"], true)
	case Quest:
		known(v, path, obj, "steps", "ordered", "windowDays", "reward")
		r.Steps = steps(v, path+".steps", obj["steps"])
		if o, ok := obj["ordered"]; ok {
			if r.Ordered, ok = o.(bool); !ok {
				v.Add(path+".ordered", "must be true or false")
			}
		}
		if w, ok := obj["windowDays"]; ok {
			r.WindowDays = integer(v, path+".windowDays", w, 1, MaxWindowDays)
		}
		r.Reward = parseReward(v, path+".reward", obj["reward"], false)
	default:
		v.Add("type", "must be SIMPLE or QUEST")
	}
	return r
}

func action(v *domain.Validator, field string, raw any) string {
	s, ok := raw.(string)
	if !ok || !actionCode.MatchString(s) {
		v.Add(field, "must be an action code such as PURCHASE: capital letters, digits and _, at most 64")
	}
	return s
}

func condition(v *domain.Validator, field string, raw any) Condition {
	if raw == nil {
		return Condition{}
	}
	s, ok := raw.(string)
	if !ok {
		v.Add(field, "must be a CEL expression in a string")
		return Condition{}
	}
	c, problems := compileCondition(s)
	for _, p := range problems {
		v.Add(field, p)
	}
	return c
}

func steps(v *domain.Validator, field string, raw any) []Step {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 || len(list) > MaxSteps {
		v.Add(field, fmt.Sprintf("must be a list of 1 to %d steps", MaxSteps))
		return nil
	}
	out := make([]Step, 0, len(list))
	for i, item := range list {
		p := fmt.Sprintf("%s[%d]", field, i)
		obj, ok := object(v, p, item)
		if !ok {
			continue
		}
		known(v, p, obj, "action", "count", "condition")
		s := Step{Action: action(v, p+".action", obj["action"]), Count: 1, Condition: condition(v, p+".condition", obj["condition"])}
		if c, ok := obj["count"]; ok {
			s.Count = integer(v, p+".count", c, 1, MaxStepCount)
		}
		out = append(out, s)
	}
	return out
}

func integer(v *domain.Validator, field string, raw any, lo, hi int64) int {
	n, ok := raw.(json.Number)
	i, err := n.Int64()
	if !ok || err != nil || i < lo || i > hi {
		v.Add(field, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return 0
	}
	return int(i)
}

func object(v *domain.Validator, field string, raw any) (map[string]any, bool) {
	obj, ok := raw.(map[string]any)
	if !ok {
		if raw == nil {
			v.Add(field, "is required")
		} else {
			v.Add(field, "must be an object")
		}
	}
	return obj, ok
}

// known reports every key of obj that is not one of keys.
func known(v *domain.Validator, field string, obj map[string]any, keys ...string) {
	var unknown []string
	for k := range obj {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		v.Add(field+"."+k, "is not a known field (known: "+strings.Join(keys, ", ")+")")
	}
}

func str(raw any) string {
	s, _ := raw.(string)
	return s
}

// Document returns the rule in its canonical JSON form: what Parse reads
// back to an equal rule, with keys sorted and amounts as decimal strings.
func (r Rule) Document() []byte {
	doc := map[string]any{"reward": rewardDocument(r.Reward)}
	if r.Kind == Simple {
		doc["action"] = r.Action
		if !r.Condition.IsZero() {
			doc["condition"] = r.Condition.Source()
		}
	} else {
		steps := make([]any, len(r.Steps))
		for i, s := range r.Steps {
			step := map[string]any{"action": s.Action, "count": s.Count}
			if !s.Condition.IsZero() {
				step["condition"] = s.Condition.Source()
			}
			steps[i] = step
		}
		doc["steps"], doc["ordered"] = steps, r.Ordered
		if r.WindowDays > 0 {
			doc["windowDays"] = r.WindowDays
		}
	}
	return CanonicalJSON(doc)
}

// CanonicalJSON writes v as a rule document is stored and shown: object keys
// sorted, no insignificant space, and conditions' <, > and & as themselves
// (encoding/json would write \u003e, which is JSON but unreadable in a rule).
func CanonicalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("rules: marshal a document of maps, strings and numbers: %v", err)) // cannot happen
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func rewardDocument(r Reward) map[string]any {
	doc := map[string]any{"type": string(r.Type), "currency": r.Currency}
	if r.IsPercentage() {
		doc["percent"], doc["percentOf"] = r.Percent.String(), r.PercentOf
		if !r.MaxAmount.IsZero() {
			doc["maxAmount"] = r.MaxAmount.String()
		}
	} else {
		doc["amount"] = r.Amount.String()
	}
	return doc
}
