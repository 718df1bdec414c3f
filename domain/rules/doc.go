// Package rules is the campaign rule language (DESIGN.md §7): what a
// campaign rewards (one action, or a quest of steps), under which CEL
// condition, and with which reward, fixed or a percentage of a payload field.
//
// A rule is written as a JSON document (a campaign's rule_json, whose shape
// schemas/rule.schema.json publishes). Parse is the only way to get a Rule: it
// checks every field, compiles every condition once, and reports every
// problem with the path of the field at fault ("rule.steps[1].condition:
// line 1, column 7: ..."). Conditions run under a cost limit, so no rule can
// stall the engine.
//
// Amounts are decimals, never floats. A reward computed from a payload is
// rounded down to its currency's scale: the platform never pays a fraction
// more than the rule says.
package rules
