package http

import (
	"context"
	"net/http"
	"sync"
)

// healthz answers 200 while the process is up.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks every dependency in parallel and answers 200 only if all
// answer, and 503 while draining for shutdown.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	type result struct {
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}
	results := make(map[string]result, len(s.Checks))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	ready := true
	for _, c := range s.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
			defer cancel()
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[c.Name] = result{Status: "down", Error: err.Error()}
				ready = false
			} else {
				results[c.Name] = result{Status: "up"}
			}
		}()
	}
	wg.Wait()
	status, overall := http.StatusOK, "ready"
	select {
	case <-s.draining:
		status, overall = http.StatusServiceUnavailable, "draining"
	default:
		if !ready {
			status, overall = http.StatusServiceUnavailable, "not ready"
		}
	}
	s.writeJSON(w, r, status, map[string]any{"status": overall, "checks": results})
}
