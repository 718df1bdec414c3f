package ws

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// userKey is whom a connection belongs to: user ids are unique only within
// their tenant.
type userKey struct {
	tenant uuid.UUID
	user   string
}

// hubShards spreads the registry over locks, so a notification for one user
// never waits for another user's connect or disconnect.
const hubShards = 64

// hub is the registry of this instance's open connections by tenant and
// user. It is safe for concurrent use.
type hub struct {
	seed   maphash.Seed
	max    int
	shards [hubShards]hubShard
}

type hubShard struct {
	mu    sync.RWMutex
	users map[userKey][]*conn
}

func newHub(maxPerUser int) *hub {
	h := &hub{seed: maphash.MakeSeed(), max: maxPerUser}
	for i := range h.shards {
		h.shards[i].users = map[userKey][]*conn{}
	}
	return h
}

func (h *hub) shard(k userKey) *hubShard {
	var m maphash.Hash
	m.SetSeed(h.seed)
	_, _ = m.Write(k.tenant[:])
	_, _ = m.WriteString(k.user)
	return &h.shards[m.Sum64()%hubShards]
}

// add registers c for its user's notifications, unless the user has as
// many connections as allowed. A connection is added before its upgrade
// completes, so the client, once it sees the upgrade, misses nothing.
func (h *hub) add(c *conn) bool {
	s := h.shard(c.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := s.users[c.key]
	if len(conns) >= h.max {
		return false
	}
	s.users[c.key] = append(conns, c)
	return true
}

// detach removes c; it gets nothing more.
func (h *hub) detach(c *conn) {
	s := h.shard(c.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := s.users[c.key]
	if i := slices.Index(conns, c); i >= 0 {
		conns = slices.Delete(conns, i, i+1)
	}
	if len(conns) == 0 {
		delete(s.users, c.key)
	} else {
		s.users[c.key] = conns
	}
}

// deliver queues the frame build returns on every connection of k.
// build runs only if k has a connection here. Nothing
// in it blocks: a full queue closes its connection instead.
func (h *hub) deliver(k userKey, build func() *frame) {
	s := h.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	conns := s.users[k]
	if len(conns) == 0 {
		return
	}
	f := build()
	for _, c := range conns {
		c.enqueue(f)
	}
}
