package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain/cohort"
)

// userIDBatch is how many member ids are handed to the command at a time:
// large enough that each COPY is worth its round trip, small enough that a
// million-id upload never holds more than a batch in memory.
const userIDBatch = 10_000

// cohortBody reads the body of POST /cohorts, {"tenantId", "name", "kind",
// "userIds" | "rule"}, token by token, so a million user ids stream through
// in batches instead of being decoded into one slice. It answers the same
// problems as decodeJSON: unknown fields and wrong types are 400, and so is
// a field given twice (which decodeJSON would silently overwrite; here the
// first userIds list may already be stored).
type cohortBody struct {
	dec      *json.Decoder
	maxBytes int64
}

func newCohortBody(r io.Reader, maxBytes int64) *cohortBody {
	bounded := &valueBound{r: r}
	dec := json.NewDecoder(bounded)
	dec.UseNumber()
	bounded.dec = dec
	return &cohortBody{dec: dec, maxBytes: maxBytes}
}

// maxValueBytes bounds one JSON value of the body (a name, a rule, one id):
// the longest legitimate one is a 2,000-character rule.
const maxValueBytes = 64 << 10

// errValueTooLarge: one value of the body is over maxValueBytes.
var errValueTooLarge = errors.New("a value of the body is too large")

// valueBound fails a read once the decoder holds more than maxValueBytes it
// has not consumed: json.Decoder buffers a whole string before it returns
// it, so one 60 MiB "name" would otherwise cost memory several times its
// size before anything could refuse it. The decoder reads only between
// values, on one goroutine, so its InputOffset is consistent here.
type valueBound struct {
	r    io.Reader
	dec  *json.Decoder
	read int64
}

func (v *valueBound) Read(p []byte) (int, error) {
	if v.read-v.dec.InputOffset() > maxValueBytes {
		return 0, errValueTooLarge
	}
	n, err := v.r.Read(p)
	v.read += int64(n)
	return n, err
}

// read reads the whole body, passing the ids to add a batch at a time
// (reusing the batch), and returns everything else.
func (b *cohortBody) read(add func([]string) error) (commands.CohortSpec, error) {
	var spec commands.CohortSpec
	tok, err := b.dec.Token()
	if errors.Is(err, io.EOF) {
		return spec, badRequest("the request body is empty; send a JSON object")
	}
	if err != nil {
		return spec, b.tokenError(err)
	}
	if tok != json.Delim('{') {
		return spec, badRequest(fmt.Sprintf("the body must be a JSON object, not %s", jsonKind(tok)))
	}
	seen := map[string]bool{}
	for b.dec.More() {
		tok, err := b.dec.Token()
		if err != nil {
			return spec, b.tokenError(err)
		}
		field, _ := tok.(string) // object keys are always strings
		if seen[field] {
			return spec, invalidField(field, "is given more than once")
		}
		seen[field] = true
		switch field {
		case "tenantId":
			s, present, err := b.string(field)
			if err == nil && present {
				spec.TenantID, err = parseUUID(field, s)
			}
			if err != nil {
				return spec, err
			}
		case "name", "kind", "rule":
			s, _, err := b.string(field)
			if err != nil {
				return spec, err
			}
			switch field {
			case "name":
				spec.Definition.Name = s
			case "kind":
				spec.Definition.Kind = cohort.Kind(s)
			default:
				spec.Definition.Rule = s
			}
		case "userIds":
			if spec.HasUserIDs, err = b.userIDs(add); err != nil {
				return spec, err
			}
		default:
			return spec, invalidField(field, "is not a known field")
		}
	}
	if _, err := b.dec.Token(); err != nil { // the closing brace
		return spec, b.tokenError(err)
	}
	if _, err := b.dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil && !isSyntaxError(err) {
			return spec, b.tokenError(err)
		}
		return spec, badRequest("the body holds more than one JSON value")
	}
	return spec, nil
}

// string reads a string or null value of field; present is false for null.
func (b *cohortBody) string(field string) (s string, present bool, err error) {
	tok, err := b.dec.Token()
	if err != nil {
		return "", false, b.tokenError(err)
	}
	switch v := tok.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	}
	return "", false, invalidField(field, "must be a string, not "+jsonKind(tok))
}

// userIDs reads the userIds array; present is false for null.
func (b *cohortBody) userIDs(add func([]string) error) (present bool, err error) {
	tok, err := b.dec.Token()
	if err != nil {
		return false, b.tokenError(err)
	}
	if tok == nil {
		return false, nil
	}
	if tok != json.Delim('[') {
		return false, invalidField("userIds", "must be an array, not "+jsonKind(tok))
	}
	batch := make([]string, 0, userIDBatch)
	for i := 0; b.dec.More(); i++ {
		tok, err := b.dec.Token()
		if err != nil {
			return true, b.tokenError(err)
		}
		id, ok := tok.(string)
		if !ok {
			return true, invalidField(fmt.Sprintf("userIds[%d]", i), "must be a string, not "+jsonKind(tok))
		}
		if batch = append(batch, id); len(batch) == userIDBatch {
			if err := add(batch); err != nil {
				return true, err
			}
			batch = batch[:0]
		}
	}
	if _, err := b.dec.Token(); err != nil { // the closing bracket
		return true, b.tokenError(err)
	}
	if len(batch) > 0 {
		return true, add(batch)
	}
	return true, nil
}

// tokenError explains a failure to read the next token.
func (b *cohortBody) tokenError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: typeTooLarge, title: "Request too large",
			detail: fmt.Sprintf("the body may be at most %d bytes", b.maxBytes)}
	case errors.Is(err, errValueTooLarge):
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: typeTooLarge, title: "Request too large",
			detail: fmt.Sprintf("one value of the body (a name, a rule, a user id) may be at most %d bytes", maxValueBytes)}
	case errors.Is(err, io.EOF):
		return badRequest("malformed JSON: the body ends in the middle of a value")
	}
	return jsonError(err)
}

func isSyntaxError(err error) bool {
	var syntax *json.SyntaxError
	return errors.As(err, &syntax)
}

// jsonKind names the JSON type of a token as decodeJSON's messages do.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "bool"
	}
	if tok == json.Delim('[') {
		return "array"
	}
	return "object"
}
