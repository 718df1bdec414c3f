package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// wsClient is the dcm suite's WebSocket client: just enough of RFC 6455 to
// open a connection with a bearer token and read the server's frames. The
// bench does not import gorilla (only adapters/ws does), and a client this
// small lets one process hold tens of thousands of connections: one that
// only holds keeps its net.Conn and nothing else.
type wsClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// errClosed is returned by next when the server sent a close frame.
var errClosed = errors.New("websocket closed by the server")

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" // RFC 6455 §1.3

// dialWS opens a WebSocket to ws://addr/path through d, authenticated with
// token in the Authorization header. It fails unless the server answers
// 101 with the right Sec-WebSocket-Accept.
func dialWS(ctx context.Context, d *net.Dialer, addr, path, token string) (*wsClient, error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := handshake(ctx, conn, addr, path, token)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

func handshake(ctx context.Context, conn net.Conn, addr, path, token string) (*wsClient, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, errors.New("upgrade: wrong Sec-WebSocket-Accept")
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsClient{conn: conn, r: r}, nil
}

// hold drops the reader, keeping only the connection: the server has sent
// nothing yet (no catch-up was asked for), and the kernel buffers its pings.
func (c *wsClient) hold() net.Conn { c.r = nil; return c.conn }

// next returns the payload of the next text or binary message, answering
// pings on the way.
func (c *wsClient) next() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		fin, op, n := h[0]&0x80 != 0, h[0]&0x0f, uint64(h[1]&0x7f)
		if h[1]&0x80 != 0 {
			return nil, errors.New("masked frame from the server")
		}
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.r, ext[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.r, ext[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(ext[:])
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			return nil, err
		}
		switch op {
		case 0x8: // close
			return nil, errClosed
		case 0x9: // ping
			if err := c.write(0xA, payload); err != nil {
				return nil, err
			}
		case 0xA: // pong
		default: // text, binary, continuation
			msg = append(msg, payload...)
			if fin {
				return msg, nil
			}
		}
	}
}

// write sends one masked control frame (payload under 126 bytes).
func (c *wsClient) write(op byte, payload []byte) error {
	frame := make([]byte, 0, 6+len(payload))
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, 0x80|op, 0x80|byte(len(payload)))
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(frame)
	return err
}

func (c *wsClient) close() error {
	_ = c.write(0x8, []byte{0x03, 0xe8}) // 1000, normal closure
	return c.conn.Close()
}
