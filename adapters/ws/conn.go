package ws

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/incentives-platform/incentives/domain/engine"
)

// Close codes the server sends (docs/api.md). After any of them a client
// reconnects with since=<the last incentiveId it got>; after
// CloseSlowClient and CloseInternalError it waits a little first.
const (
	// CloseGoingAway: the server is stopping.
	CloseGoingAway = websocket.CloseGoingAway // 1001
	// CloseInternalError: the catch-up could not be read.
	CloseInternalError = websocket.CloseInternalServerErr // 1011
	// CloseSlowClient: the client read too slowly and its send queue filled
	// (1013, "try again later").
	CloseSlowClient = websocket.CloseTryAgainLater // 1013
	// CloseCatchUpIncomplete: more was missed than one catch-up sends
	// (Config.CatchUpLimit); what was sent is in order, and the reason says
	// since=<last incentive id sent>.
	CloseCatchUpIncomplete = 4000
	// CloseTokenExpired: the token the socket was opened with has expired;
	// reconnect with a new one (and since=).
	CloseTokenExpired = 4001
)

// recentIDs is how many of the last incentive ids a connection remembers, to
// drop a notification Kafka delivers twice (a retried publish).
const recentIDs = 16

// seamWindow is how long after its catch-up a connection still drops live
// frames the catch-up already sent: the consumer can trail the database
// by that much before a duplicate gets through.
const seamWindow = time.Minute

// closeGrace is how long a closing server waits for the client's answering
// close frame before it drops the TCP connection.
const closeGrace = time.Second

// cursor is a parsed since: an incentive id, or else a time.
type cursor struct {
	after uuid.UUID
	since time.Time
}

// conn is one open socket. Server.Deliver (through the hub) queues frames;
// one writer goroutine (run) writes them, pings and closes; the handler's
// goroutine reads (readLoop). Only run writes data frames.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	key userKey
	// expires is when the socket's token expires: a socket is no longer
	// than its token valid. Zero: never (a token without exp is refused).
	expires time.Time

	mu       sync.Mutex
	queue    []*frame
	spare    []*frame
	overflow bool
	wake     chan struct{}

	readDone   chan struct{}
	writerDone chan struct{}

	// Owned by the writer goroutine.
	recent    [recentIDs]uuid.UUID
	next      int
	seam      map[uuid.UUID]struct{}
	seamUntil time.Time
}

// newConn returns a connection to be upgraded; ws is set once it is.
func newConn(s *Server, k userKey) *conn {
	return &conn{srv: s, key: k, wake: make(chan struct{}, 1),
		readDone: make(chan struct{}), writerDone: make(chan struct{})}
}

// enqueue adds f to the queue without blocking. When the queue is full the
// connection is marked for closing with CloseSlowClient and its queue
// dropped: the client catches up from the database when it comes back.
func (c *conn) enqueue(f *frame) {
	c.mu.Lock()
	switch {
	case c.overflow:
		c.mu.Unlock()
		return
	case len(c.queue) >= c.srv.cfg.SendQueue:
		c.overflow, c.queue = true, nil
		c.mu.Unlock()
		c.srv.stats.slowClosed.Add(1)
	default:
		c.queue = append(c.queue, f)
		c.mu.Unlock()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns the queued frames, or overflow.
func (c *conn) take() (batch []*frame, overflow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return nil, true
	}
	batch, c.queue, c.spare = c.queue, c.spare, nil
	return batch, false
}

// giveBack keeps a written batch's array for the next one.
func (c *conn) giveBack(batch []*frame) {
	clear(batch)
	c.mu.Lock()
	if c.spare == nil && cap(batch) <= c.srv.cfg.SendQueue {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

// run is the writer goroutine: the catch-up if any, then queued frames and
// pings until the connection ends.
func (c *conn) run(from *cursor) {
	defer close(c.writerDone)
	c.finish(c.writeLoop(from))
}

// writeLoop does run's work and says why it ended.
func (c *conn) writeLoop(from *cursor) (ended string) {
	if from != nil {
		code, reason, err := c.catchUp(from)
		if err != nil {
			return "catch-up: " + err.Error()
		}
		if code != 0 {
			return c.closeWith(code, reason)
		}
	}
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	var expired <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-expired:
			return c.closeWith(CloseTokenExpired, "token expired: reconnect with a new token and since=<last incentiveId>")
		case <-c.wake:
			batch, overflow := c.take()
			if overflow {
				return c.closeWith(CloseSlowClient, "send queue full: the client reads too slowly")
			}
			for _, f := range batch {
				if c.seen(f.id) {
					continue
				}
				if err := c.send(f.data); err != nil {
					return "write: " + err.Error()
				}
			}
			c.giveBack(batch)
		case <-ping.C:
			if c.seam != nil && time.Now().After(c.seamUntil) {
				c.seam = nil // an idle socket need not hold it
			}
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
				return "ping: " + err.Error()
			}
		case <-c.readDone:
			return "closed by the client, or silent"
		case <-c.srv.closing:
			return c.closeWith(CloseGoingAway, "server shutting down")
		}
	}
}

// catchUp sends what the client missed since from. The connection is in the
// hub already, so whatever is published from now on is queued meanwhile;
// whatever was published before is committed, hence in what this reads.
// The frames queued during the catch-up that it already sent are dropped by
// seen. A non-zero code closes the connection; an error means it is gone.
func (c *conn) catchUp(from *cursor) (code int, reason string, err error) {
	cfg := c.srv.cfg
	ctx, cancel := context.WithTimeout(c.srv.ctx, cfg.CatchUpTimeout)
	var missed []engine.Incentive
	if from.after != uuid.Nil {
		missed, err = c.srv.deps.CatchUp.IncentivesAfter(ctx, c.key.tenant, c.key.user, from.after, cfg.CatchUpLimit+1)
	} else {
		missed, err = c.srv.deps.CatchUp.IncentivesSince(ctx, c.key.tenant, c.key.user, from.since, cfg.CatchUpLimit+1)
	}
	cancel()
	if err != nil {
		if c.srv.ctx.Err() != nil {
			return CloseGoingAway, "server shutting down", nil
		}
		c.srv.logger.Warn("catch-up failed", "tenant", c.key.tenant, "err", err)
		return CloseInternalError, "catch-up failed: reconnect later", nil
	}
	incomplete := len(missed) > cfg.CatchUpLimit
	if incomplete {
		missed = missed[:cfg.CatchUpLimit]
	}
	c.seam, c.seamUntil = make(map[uuid.UUID]struct{}, len(missed)), time.Now().Add(seamWindow)
	for _, inc := range missed {
		c.seam[inc.ID] = struct{}{}
		if err := c.send(encodeFrame(inc).data); err != nil {
			return 0, "", err
		}
		c.srv.stats.catchUpFrames.Add(1)
	}
	if incomplete {
		return CloseCatchUpIncomplete, "catch-up incomplete: reconnect with since=" + missed[len(missed)-1].ID.String(), nil
	}
	return 0, "", nil
}

// seen reports whether the connection sent id already, in its catch-up or
// among its last recentIDs frames, and remembers it otherwise.
func (c *conn) seen(id uuid.UUID) bool {
	if c.seam != nil {
		if time.Now().After(c.seamUntil) {
			c.seam = nil
		} else if _, ok := c.seam[id]; ok {
			return true
		}
	}
	for _, r := range c.recent {
		if r == id {
			return true
		}
	}
	c.recent[c.next] = id
	c.next = (c.next + 1) % recentIDs
	return false
}

func (c *conn) send(data []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
		return err
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return err
	}
	c.srv.stats.framesSent.Add(1)
	return nil
}

// closeWith sends a close frame and waits a little for the client's
// answer, so the client reads the code before the TCP connection goes. It
// returns why the connection ended, for the log.
func (c *conn) closeWith(code int, reason string) (ended string) {
	ended = "closed with " + strconv.Itoa(code) + " (" + reason + ")"
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
		return ended + ", unsent: " + err.Error()
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
	return ended
}

// finish takes the connection out of the hub and closes the socket, which
// ends readLoop.
func (c *conn) finish(ended string) {
	c.srv.hub.detach(c)
	err := c.ws.Close()
	c.srv.logger.Debug("websocket closed", "tenant", c.key.tenant, "remote", c.ws.RemoteAddr().String(), "why", ended, "err", err)
}

// readLoop reads until the connection fails or the client closes it,
// discarding messages: clients have nothing to say, but control frames
// (pong, close) are only processed while reading. Any frame from the client
// proves it alive.
func (c *conn) readLoop() {
	defer close(c.readDone)
	cfg := c.srv.cfg
	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait)) }
	c.ws.SetReadLimit(cfg.ReadLimit)
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
		alive()
	}
}
