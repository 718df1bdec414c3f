package ws

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/incentives-platform/incentives/adapters/auth"
)

// Problem types, as the REST API's (docs/api.md).
const (
	typeMalformed          = "urn:incentives:problem:malformed-request"
	typeUnauthenticated    = "urn:incentives:problem:unauthenticated"
	typeForbidden          = "urn:incentives:problem:forbidden"
	typeNotFound           = "urn:incentives:problem:not-found"
	typeMethodNotAllowed   = "urn:incentives:problem:method-not-allowed"
	typeUpgradeRequired    = "urn:incentives:problem:upgrade-required"
	typeTooManyConnections = "urn:incentives:problem:too-many-connections"
	typeUnavailable        = "urn:incentives:problem:unavailable"
)

// refusal is a handshake answered with an HTTP error instead of an upgrade.
type refusal struct {
	status             int
	typ, title, detail string
}

var (
	errNoToken = &refusal{http.StatusUnauthorized, typeUnauthenticated, "Unauthenticated",
		"a valid user token is required: Authorization: Bearer, the access_token query parameter, or the subprotocols access_token, <token>"}
	errBadToken     = &refusal{http.StatusUnauthorized, typeUnauthenticated, "Unauthenticated", "the token is not valid"}
	errExpiredToken = &refusal{http.StatusUnauthorized, typeUnauthenticated, "Unauthenticated", "the token has expired"}
	errNotUser      = &refusal{http.StatusForbidden, typeForbidden, "Forbidden",
		"notifications are for users: the token's role must be user"}
	errOrigin = &refusal{http.StatusForbidden, typeForbidden, "Forbidden",
		"this origin may not open notification sockets (WS_ALLOWED_ORIGINS)"}
	errTooMany = &refusal{http.StatusTooManyRequests, typeTooManyConnections, "Too many connections",
		"this user has as many notification sockets open as allowed; close one first"}
	errClosing = &refusal{http.StatusServiceUnavailable, typeUnavailable, "Unavailable",
		"the server is shutting down; connect again"}
	errNoUpgrade = &refusal{http.StatusUpgradeRequired, typeUpgradeRequired, "Upgrade required",
		"this endpoint speaks WebSocket only"}
	errMethod = &refusal{http.StatusMethodNotAllowed, typeMethodNotAllowed, "Method not allowed",
		"a WebSocket handshake is a GET"}
	errNoHistory = &refusal{http.StatusBadRequest, typeMalformed, "Malformed request",
		"since: this server keeps no history to catch up from"}
)

// serveWS checks a handshake and upgrades it. Every refusal happens before
// the upgrade, as problem+json.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	k, from, expires, ref := s.admit(r)
	if ref != nil {
		s.refuse(w, r, ref)
		return
	}
	if !s.track() {
		s.refuse(w, r, errClosing)
		return
	}
	defer s.wg.Done()
	c := newConn(s, k)
	c.expires = expires
	if !s.hub.add(c) {
		s.refuse(w, r, errTooMany)
		return
	}
	// Counted from the moment it is in the hub, before the client can see
	// the upgrade, and until after it left the hub: the count never shows
	// a socket gone that still holds a place under the per-user cap.
	s.stats.connections.Add(1)
	// A token sent as a subprotocol is answered with Subprotocol, which
	// the upgrader picks from the client's list.
	sock, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader answered already (or the client had gone).
		s.hub.detach(c)
		s.stats.connections.Add(-1)
		s.stats.refused.Add(1)
		s.logger.Debug("websocket upgrade failed", "err", err)
		return
	}
	c.ws = sock // before the goroutines that use it start
	go c.run(from)
	c.readLoop()
	<-c.writerDone
	s.stats.connections.Add(-1)
}

// admit reads who is connecting and from where, or why not.
func (s *Server) admit(r *http.Request) (k userKey, from *cursor, expires time.Time, ref *refusal) {
	if r.Method != http.MethodGet {
		return k, nil, expires, errMethod
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return k, nil, expires, errNoUpgrade
	}
	if !s.originAllowed(r) {
		return k, nil, expires, errOrigin
	}
	token := tokenOf(r)
	if token == "" {
		return k, nil, expires, errNoToken
	}
	p, err := s.deps.Verifier.Verify(token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return k, nil, expires, errExpiredToken
	case err != nil:
		return k, nil, expires, errBadToken
	case p.Role != auth.RoleUser:
		return k, nil, expires, errNotUser
	}
	if raw := r.URL.Query().Get("since"); raw != "" {
		if from, err = parseSince(raw); err != nil {
			return k, nil, expires, &refusal{http.StatusBadRequest, typeMalformed, "Malformed request", err.Error()}
		}
		if s.deps.CatchUp == nil {
			return k, nil, expires, errNoHistory
		}
	}
	return userKey{tenant: p.TenantID, user: p.Subject}, from, p.ExpiresAt, nil
}

// tokenOf returns the request's token: from the Authorization header, the
// access_token query parameter, or the subprotocols "access_token, <token>".
func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(t)
	}
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	protocols := websocket.Subprotocols(r)
	for i, p := range protocols {
		if p == Subprotocol && i+1 < len(protocols) {
			return protocols[i+1]
		}
	}
	return ""
}

// parseSince reads an incentive id or an RFC 3339 time. A space stands for
// the + of a zone offset that the client forgot to escape in the query.
func parseSince(raw string) (*cursor, error) {
	if len(raw) == 36 {
		if id, err := uuid.Parse(raw); err == nil && id != uuid.Nil {
			return &cursor{after: id}, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(raw, " ", "+")); err == nil {
		return &cursor{since: t.UTC()}, nil
	}
	return nil, errors.New("since: want an incentive id or an RFC 3339 time")
}

// originAllowed lets through requests without Origin (not from a browser),
// pages from the socket's own host, and the configured origins.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.anyOrig {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return s.origins[strings.ToLower(u.Scheme+"://"+u.Host)]
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	s.stats.refused.Add(1)
	// The detail, never the token (nor the query, which may hold one).
	s.logger.Debug("websocket handshake refused", "status", ref.status, "detail", ref.detail)
	switch ref.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="incentives"`)
	case http.StatusUpgradeRequired:
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodGet)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, r, ref.status, ref.typ, ref.title, ref.detail)
}

// problem is an RFC 9457 problem details object, as the REST API writes.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, typ, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// A client that hung up cannot be told anything.
	_ = enc.Encode(problem{Type: typ, Title: title, Status: status, Detail: detail, Instance: r.URL.Path})
}
