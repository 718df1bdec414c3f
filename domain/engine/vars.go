package engine

// EventVars returns the variables a rule condition sees for e: the map
// `event` with keys tenantId and userId (strings), actionCode, eventTs (a
// time.Time, a CEL timestamp) and payload (the event's JSON object).
//
// Build it once per event and pass it to EvaluateVars for every campaign the
// event meets. Evaluation never modifies it, so it may be shared, but it
// holds e.Payload itself: neither may change while it is in use.
//
// The payload is not copied or converted. Its numbers are json.Number, which
// CEL (cel-go's type adapter) reads as an int when the text is a whole
// number that fits in 64 bits and as a double otherwise, in nested objects
// and lists too, and CEL compares ints with doubles: `event.payload.amount
// >= 100` holds for 100 and for 100.5 alike. TestConditionsReadJSONNumbers
// pins that; if a cel-go upgrade ever drops it, convert here.
func EventVars(e ActionEvent) map[string]any {
	payload := e.Payload
	if payload == nil {
		// A condition on a missing field then fails with "no such key".
		payload = map[string]any{}
	}
	return map[string]any{"event": map[string]any{
		"tenantId":   e.TenantID.String(),
		"userId":     e.UserID,
		"actionCode": e.ActionCode,
		"eventTs":    e.EventTs,
		"payload":    payload,
	}}
}
