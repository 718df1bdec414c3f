// Package jsonschema checks campaign rules against schemas/rule.schema.json,
// the published contract of rule_json, so a rule the platform accepts is one
// every client validating against that file accepts too. It reports each
// failure as a domain.Violation at the rule's own field path
// ("rule.steps[1].count"). It checks shape only: rules.Parse still decides
// what the shape means (CEL compiles, amounts in range).
//
// This package is the only one that imports the JSON Schema library.
package jsonschema

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/incentives-platform/incentives/domain"
	"github.com/incentives-platform/incentives/domain/rules"
	"github.com/incentives-platform/incentives/schemas"
)

const ruleSchemaURL = "urn:incentives:schema:rule"

// RuleSchema validates rule documents. It is immutable and safe for concurrent use.
type RuleSchema struct {
	byKind  map[rules.Kind]*jsonschema.Schema
	printer *message.Printer
}

// LoadRuleSchema compiles schemas/rule.schema.json.
func LoadRuleSchema() (*RuleSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.Rule))
	if err != nil {
		return nil, fmt.Errorf("rule.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ruleSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("rule.schema.json: %w", err)
	}
	s := &RuleSchema{byKind: map[rules.Kind]*jsonschema.Schema{}, printer: message.NewPrinter(language.English)}
	// Each campaign type is checked against its own shape: an error then
	// says what is wrong with a QUEST rule, not that it matches neither shape.
	for kind, def := range map[rules.Kind]string{rules.Simple: "simple", rules.Quest: "quest"} {
		if s.byKind[kind], err = c.Compile(ruleSchemaURL + "#/$defs/" + def); err != nil {
			return nil, fmt.Errorf("rule.schema.json: %w", err)
		}
	}
	return s, nil
}

// ValidateRule returns every way doc breaks the schema of a rule of kind, or
// nothing. A kind that is neither SIMPLE nor QUEST is not its business (the
// campaign reports it): nothing is returned for it.
func (s *RuleSchema) ValidateRule(kind rules.Kind, doc []byte) []domain.Violation {
	schema, ok := s.byKind[kind]
	if !ok {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return []domain.Violation{{Field: "rule", Message: "must be one JSON object"}}
	}
	err = schema.Validate(inst)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []domain.Violation
	s.leaves(ve, &out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return dedupe(out)
}

// leaves collects the innermost causes: the outer ones only say "see below".
func (s *RuleSchema) leaves(e *jsonschema.ValidationError, out *[]domain.Violation) {
	if len(e.Causes) == 0 {
		msg := e.ErrorKind.LocalizedString(s.printer)
		if _, ok := e.ErrorKind.(*kind.FalseSchema); ok {
			// unevaluatedProperties: false says "false schema" about each extra field.
			msg = "is not a known field here"
		}
		*out = append(*out, domain.Violation{Field: fieldPath(e.InstanceLocation), Message: msg})
		return
	}
	for _, c := range e.Causes {
		s.leaves(c, out)
	}
}

// fieldPath writes a JSON pointer's tokens as the API names fields.
func fieldPath(tokens []string) string {
	var b strings.Builder
	b.WriteString("rule")
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + t)
		}
	}
	return b.String()
}

func dedupe(vs []domain.Violation) []domain.Violation {
	out := vs[:0]
	for i, v := range vs {
		if i == 0 || v != vs[i-1] {
			out = append(out, v)
		}
	}
	return out
}
