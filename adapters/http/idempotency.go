package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/adapters/auth"
)

// Idempotency-Key lets a client retry a POST whose answer it lost (a timeout,
// a dropped connection) without creating a second tenant or campaign: the
// first answer to a key is remembered and replayed. The key is claimed
// (pending) before the request runs, so two requests with one key never both
// run; bodies are hashed while the handler streams them, never buffered, so a
// 20 MB cohort upload costs no more memory with a key than without.

// Headers of the protocol.
const (
	idempotencyKeyHeader   = "Idempotency-Key"
	idempotentReplayHeader = "Idempotent-Replayed"
)

const (
	// maxIdempotencyKeyLength bounds a key; clients usually send a UUID.
	maxIdempotencyKeyLength = 255
	// maxDrainBytes bounds how much of a body the handler left unread
	// (because it refused the request early: 403, 413) is read to finish the
	// hash. Past it the answer is not remembered: the request changed nothing
	// and a retry gets the same refusal, while reading gigabytes to remember
	// a refusal would defeat the body limit.
	maxDrainBytes = 1 << 20
	// maxStoredResponse bounds a remembered answer; POST answers are single
	// resources, far smaller. A larger one is answered but not remembered.
	maxStoredResponse = 1 << 20
)

// replayedHeaders are the headers of a remembered answer that are replayed;
// the others (X-Request-Id, Date) belong to the request that gets the replay.
var replayedHeaders = []string{"Content-Type", "ETag", "Location"}

// IdempotencyKey is a client's key within the scope of the caller that sent
// it: one caller's key never meets another's.
type IdempotencyKey struct {
	// Scope is "<role>:<tenant id>:<subject>" of the caller's token.
	Scope string
	Key   string
}

// IdempotencyClaim asks to run a request under a key.
type IdempotencyClaim struct {
	IdempotencyKey
	// Claim identifies the request: only it may complete or release the key.
	Claim uuid.UUID
	// Now is the time of the request: records that expired by then, and
	// pending claims whose lock ran out by then, do not count.
	Now time.Time
	// LockedUntil is when the claim counts as abandoned if still pending (its
	// process died mid-request).
	LockedUntil time.Time
	// ExpiresAt is when the key and its answer are forgotten.
	ExpiresAt time.Time
}

// IdempotentRecord is what a key holds.
type IdempotentRecord struct {
	// Pending is true while the request that claimed the key runs.
	Pending bool
	// RequestHash is the sha256 of the request's method, URI and body
	// (requestHasher); RequestBytes the body's length.
	RequestHash  []byte
	RequestBytes int64
	// The answer to replay.
	Status int
	Header http.Header
	Body   []byte
}

// IdempotencyStore remembers the answers to requests sent with an
// Idempotency-Key. Implementations must be safe for concurrent use.
type IdempotencyStore interface {
	// Claim claims c's key for a request about to run, unless the key holds
	// a live record (a completed answer not expired at c.Now, or a pending
	// claim not abandoned at c.Now): then it returns that record, unclaimed.
	Claim(ctx context.Context, c IdempotencyClaim) (rec IdempotentRecord, claimed bool, err error)
	// Complete stores the answer to the request holding claim, which must
	// not be pending. It returns an error wrapping ErrIdempotencyClaimLost if
	// key is no longer held by claim.
	Complete(ctx context.Context, key IdempotencyKey, claim uuid.UUID, rec IdempotentRecord) error
	// Release forgets key if claim still holds it, so the next request with
	// it runs; otherwise it does nothing.
	Release(ctx context.Context, key IdempotencyKey, claim uuid.UUID) error
}

// ErrIdempotencyClaimLost means a request's claim on a key was taken over
// (it outlived LockedUntil) or released before its answer could be stored.
var ErrIdempotencyClaimLost = errors.New("idempotency key no longer held by this request")

// IdempotencyConfig configures Idempotency-Key handling.
type IdempotencyConfig struct {
	// TTL is how long a key and its answer are remembered after the first
	// request with it. Default 24h.
	TTL time.Duration
	// LockTimeout is how long a key stays pending before another request
	// with it may run, in case the process running the first one died.
	// It must outlast any request (the server's timeouts are 30s). Default 2m.
	LockTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *IdempotencyConfig) setDefaults() {
	if c.TTL == 0 {
		c.TTL = 24 * time.Hour
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = 2 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

var (
	errIdempotencyKeyReused = &httpError{status: http.StatusUnprocessableEntity, typ: typeIdempotencyReused, title: "Idempotency key reused",
		detail: "this Idempotency-Key was used for a different request (method, path or body); use a new key for a new request"}
	errIdempotencyInProgress = &httpError{status: http.StatusConflict, typ: typeIdempotencyInProgress, title: "Idempotency key in progress",
		detail: "a request with this Idempotency-Key is still running; retry shortly to get its answer"}
)

// idempotency runs each POST that carries an Idempotency-Key at most once
// per caller and key: a repeat of the same request gets the first answer
// (marked Idempotent-Replayed), a different request under the key is 422,
// and a repeat while the first still runs is 409. It must run after
// authenticate, since keys are scoped to the caller.
func (s *Server) idempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only admins may change anything; a user's POST is refused by its
		// handler, and must not leave a remembered answer behind either.
		role := principalFrom(r.Context()).Role
		if r.Method != http.MethodPost || len(r.Header.Values(idempotencyKeyHeader)) == 0 ||
			(role != auth.RolePlatformAdmin && role != auth.RoleTenantAdmin) {
			next.ServeHTTP(w, r)
			return
		}
		key, err := idempotencyKeyOf(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		cfg := s.cfg.Idempotency
		now := cfg.Now()
		c := IdempotencyClaim{IdempotencyKey: key, Claim: uuid.New(), Now: now,
			LockedUntil: now.Add(cfg.LockTimeout), ExpiresAt: now.Add(cfg.TTL)}
		rec, claimed, err := s.Idempotency.Claim(r.Context(), c)
		switch {
		case err != nil:
			s.writeError(w, r, err)
		case claimed:
			s.runOnce(w, r.WithContext(context.WithValue(r.Context(), idempotencyKeyCtx, key)), next, c)
		case rec.Pending:
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, errIdempotencyInProgress)
		default:
			s.replay(w, r, rec)
		}
	})
}

type idempotencyKeyCtxType struct{}

var idempotencyKeyCtx idempotencyKeyCtxType

// resourceIDSpace is the UUIDv5 namespace of ids derived from idempotency
// keys. It must never change: a retry must derive the id the first try did.
var resourceIDSpace = uuid.MustParse("6b1f3c8e-2a4d-4f7b-9c1e-5d8a7b6c4e20")

// newResourceID returns the id of the resource a create request makes. With
// an Idempotency-Key it is derived from the caller, the key and the path, so
// a retry after a crash between the append and storing the answer (the key
// then frees itself and the retry runs again) aims at the same stream and
// meets a version conflict instead of creating a second resource.
func newResourceID(r *http.Request) uuid.UUID {
	key, ok := r.Context().Value(idempotencyKeyCtx).(IdempotencyKey)
	if !ok {
		return uuid.New()
	}
	return uuid.NewSHA1(resourceIDSpace, []byte(key.Scope+"\x00"+key.Key+"\x00"+r.URL.Path))
}

// idempotencyKeyOf reads the request's key, scoped to its caller.
func idempotencyKeyOf(r *http.Request) (IdempotencyKey, error) {
	values := r.Header.Values(idempotencyKeyHeader)
	if len(values) != 1 || len(values[0]) == 0 || len(values[0]) > maxIdempotencyKeyLength ||
		strings.IndexFunc(values[0], func(c rune) bool { return c < 0x20 || c > 0x7e }) >= 0 {
		return IdempotencyKey{}, invalidField(idempotencyKeyHeader, "must be sent once, as 1 to 255 printable ASCII characters (a UUID will do)")
	}
	p := principalFrom(r.Context())
	return IdempotencyKey{Scope: string(p.Role) + ":" + p.TenantID.String() + ":" + p.Subject, Key: values[0]}, nil
}

// runOnce runs a request under a key it claimed and stores the answer, or
// releases the key when the answer is not worth keeping: a 5xx (a retry may
// succeed), a panic, a client gone before its answer, or a body or answer
// too large to account for.
func (s *Server) runOnce(w http.ResponseWriter, r *http.Request, next http.Handler, c IdempotencyClaim) {
	body := newRequestHasher(r)
	cw := &capturingWriter{ResponseWriter: w, beforeAnswer: func() { body.drain(maxDrainBytes) }}
	stored := false
	defer func() {
		if stored {
			return
		}
		ctx, cancel := afterRequest(r)
		defer cancel()
		if err := s.Idempotency.Release(ctx, c.IdempotencyKey, c.Claim); err != nil {
			s.logger.WarnContext(ctx, "release idempotency key", "request_id", requestIDFrom(ctx), "err", err)
		}
	}()

	hashed := r.WithContext(r.Context()) // a shallow copy, so the caller's request keeps its body
	hashed.Body = body
	next.ServeHTTP(cw, hashed)
	body.drain(maxDrainBytes)
	if cw.status == 0 || cw.status >= 500 || cw.overflow || !body.complete() {
		return
	}
	ctx, cancel := afterRequest(r)
	defer cancel()
	err := s.Idempotency.Complete(ctx, c.IdempotencyKey, c.Claim, IdempotentRecord{
		RequestHash: body.sum(), RequestBytes: body.n,
		Status: cw.status, Header: cw.header, Body: cw.body.Bytes(),
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "answered but could not remember the answer; a retry with the key will run again",
			"request_id", requestIDFrom(ctx), "err", err)
		return
	}
	stored = true
}

// afterRequest is the context of storing or releasing a key once the
// handler is done: it outlives a client that hung up, since the request ran.
func afterRequest(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
}

// replay answers a request with a completed key's answer if it is the same
// request, hashing its body (streamed, never more than the original's
// length) to tell.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, rec IdempotentRecord) {
	h := newRequestHasher(r)
	h.drain(rec.RequestBytes) // a longer body is a different request: no need to read it all
	if h.err != nil && !errors.Is(h.err, errUnreadTooLong) {
		s.writeError(w, r, badRequest("could not read the body: "+h.err.Error()))
		return
	}
	if !h.complete() || h.n != rec.RequestBytes || !bytes.Equal(h.sum(), rec.RequestHash) {
		s.writeError(w, r, errIdempotencyKeyReused)
		return
	}
	for k, v := range rec.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = v
	}
	w.Header().Set(idempotentReplayHeader, "true")
	w.WriteHeader(rec.Status)
	if _, err := w.Write(rec.Body); err != nil {
		s.logger.DebugContext(r.Context(), "write replayed answer", "err", err)
	}
}

// requestHasher is a request body that hashes what is read through it, with
// the method and URI in front, so that one hash tells whether two requests
// are the same.
type requestHasher struct {
	body io.ReadCloser
	h    hash.Hash
	n    int64 // body bytes read
	eof  bool
	err  error // a read error other than EOF: the hash covers an unknown part
}

func newRequestHasher(r *http.Request) *requestHasher {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	return &requestHasher{body: body, h: h}
}

func (b *requestHasher) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// Close does not close the body: the server does once the handler returns,
// and the rest of it must still be read into the hash.
func (b *requestHasher) Close() error { return nil }

// errUnreadTooLong stops the hash of a body whose handler left more than
// the drain limit unread.
var errUnreadTooLong = errors.New("more of the body was left unread than is worth hashing")

// drain reads the rest of the body into the hash, at most limit bytes more;
// past that the hash is incomplete for good.
func (b *requestHasher) drain(limit int64) {
	if b.eof || b.err != nil {
		return
	}
	_, err := io.CopyN(io.Discard, b, limit+1)
	switch {
	case err == nil:
		b.err = errUnreadTooLong
	case !errors.Is(err, io.EOF) && b.err == nil:
		b.err = err
	}
}

// complete reports whether the hash covers the whole body.
func (b *requestHasher) complete() bool { return b.eof && b.err == nil }

func (b *requestHasher) sum() []byte { return b.h.Sum(nil) }

// capturingWriter passes an answer through to the client and keeps a copy.
type capturingWriter struct {
	http.ResponseWriter
	// beforeAnswer runs before the first byte of the answer: once an HTTP/1
	// server has sent headers it may discard the unread body itself, out of
	// the hash's sight, so the rest is hashed first.
	beforeAnswer func()
	status       int
	header       http.Header
	body         bytes.Buffer
	overflow     bool
}

func (w *capturingWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.beforeAnswer()
		w.status = status
		w.header = http.Header{}
		for _, k := range replayedHeaders {
			if v := w.Header().Values(k); len(v) > 0 {
				w.header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.overflow {
		if w.body.Len()+len(b) > maxStoredResponse {
			w.overflow = true
			w.body = bytes.Buffer{}
		} else {
			w.body.Write(b)
		}
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *capturingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
