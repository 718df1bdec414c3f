package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// decodeJSON reads the request body into dst: application/json only, at most
// the server's body limit, no unknown fields, exactly one JSON value. With
// optional set, an empty body leaves dst as it is.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &httpError{status: http.StatusRequestEntityTooLarge, typ: typeTooLarge, title: "Request too large",
			detail: fmt.Sprintf("the body may be at most %d bytes", s.cfg.MaxBodyBytes)}
	}
	if err != nil {
		return badRequest("could not read the body: " + err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("the request body is empty; send a JSON object")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, typ: typeUnsupportedMedia, title: "Unsupported media type",
			detail: "send the body as Content-Type: application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	// dec.More misses a stray ] or }; nothing but space may follow the value.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return badRequest("the body holds something after its JSON value")
	}
	return nil
}

// jsonError explains a decoding error in the request's own terms.
func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &typeError):
		field := typeError.Field
		if field == "" {
			return badRequest(fmt.Sprintf("the body must be a JSON object, not %s", typeError.Value))
		}
		return invalidField(field, fmt.Sprintf("must be %s, not %s", jsonType(typeError.Type.Kind().String()), typeError.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return invalidField(name, "is not a known field")
	default:
		return badRequest("malformed JSON: " + err.Error())
	}
}

func jsonType(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "bool":
		return "true or false"
	case kind == "slice", kind == "array":
		return "an array"
	default:
		return "an object"
	}
}
