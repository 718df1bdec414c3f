package ws

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
)

// demoFiles is the demo page (demo/index.html) and anything beside it.
//
//go:embed demo/*
var demoFiles embed.FS

// serveDemo serves GET /ws/demo (the page) and /ws/demo/<file>. The page
// holds no token: the user pastes one.
func serveDemo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeProblem(w, r, http.StatusMethodNotAllowed, typeMethodNotAllowed, "Method not allowed", "the demo page is read with GET")
		return
	}
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	body, err := fs.ReadFile(demoFiles, path.Join("demo", path.Clean("/" + name)[1:]))
	if err != nil {
		writeProblem(w, r, http.StatusNotFound, typeNotFound, "Not found", "no such file of the demo page")
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	// The page must not be framed by another site (it asks for a token).
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
