package http

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/incentives-platform/incentives/domain"
)

// minVersionHeader asks a read to wait until the read model holds at least
// that version of the resource: a client that has the ETag of its own write
// reads its own write, although reads come from projections that trail
// writes by a few tens of milliseconds.
const minVersionHeader = "X-Min-Version"

// readAtLeast calls read, which returns the version it found, until that
// version is at least the request's X-Min-Version or the wait (ReadWait)
// runs out. Without the header it reads once. When the wait runs out it
// answers what the read model holds: not found stays not found, and an older
// version is a 503 telling the client to retry.
func (s *Server) readAtLeast(r *http.Request, read func() (int64, error)) error {
	raw := r.Header.Get(minVersionHeader)
	if raw == "" {
		_, err := read()
		return err
	}
	want, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || want < 1 {
		return invalidField(minVersionHeader, "must be a version this API returned, such as 3")
	}
	deadline := time.Now().Add(s.cfg.ReadWait)
	// Projections usually catch up within tens of milliseconds; a longer
	// wait backs off, so a waiting request costs a few queries, not hundreds.
	pause := 5 * time.Millisecond
	for {
		got, err := read()
		switch {
		case err == nil && got >= want:
			return nil
		case err != nil && !errors.Is(err, domain.ErrNotFound):
			return err
		case time.Now().After(deadline):
			if err != nil {
				return err
			}
			return &httpError{status: http.StatusServiceUnavailable, typ: typeNotYet, title: "Not caught up yet",
				detail: "the read model holds version " + strconv.FormatInt(got, 10) + ", older than the requested " + raw + "; retry shortly"}
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}
