// ui.go: serving the built single-page app, or a page that says how to build it.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/tickit/tickit/functions/internal/httpapi"
)

// The ui folder always holds not-built.html (committed); `make ui` writes the app into
// ui/dist (not committed). So the function compiles on a fresh clone and serves the real UI
// once it is built.
//
//go:embed ui
var embedded embed.FS

// builtUI returns the embedded ui folder.
func builtUI() fs.FS {
	sub, err := fs.Sub(embedded, "ui")
	if err != nil {
		panic(err) // the directive above guarantees the folder
	}
	return sub
}

// Cache policies: Vite names every asset after its content hash, so a name never changes
// content; index.html names the current assets, so the browser must revalidate it each time.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// site serves the app from dist (index.html, assets/...), index.html for any other path so
// that the app's router handles it, or notBuilt when there is no app.
type site struct {
	dist     fs.FS
	notBuilt []byte   // nil once the app is built
	etags    sync.Map // name -> ETag
	gzips    sync.Map // asset name -> gzipped content, or nil when not worth it
}

func newUI(files fs.FS) (*site, error) {
	if files == nil {
		return nil, errors.New("client: no UI files")
	}
	dist, err := fs.Sub(files, "dist")
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(dist, "index.html"); err == nil {
		return &site{dist: dist}, nil
	}
	page, err := fs.ReadFile(files, "not-built.html")
	if err != nil {
		return nil, fmt.Errorf("client: neither dist/index.html nor not-built.html: %w", err)
	}
	return &site{notBuilt: page}, nil
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpapi.WriteError(w, r, httpapi.NewError(http.StatusMethodNotAllowed, "Method Not Allowed"))
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if s.notBuilt != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(s.notBuilt)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if info, err := fs.Stat(s.dist, name); err != nil || info.IsDir() {
		if strings.HasPrefix(name, "assets/") {
			// A missing script must fail as a script, not load the app's HTML in its place.
			httpapi.WriteError(w, r, httpapi.ErrNotFound)
			return
		}
		name = "index.html" // a route of the app: /tickets/42, /orders
	}
	s.serveFile(w, r, name)
}

func (s *site) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	f, err := s.dist.Open(name)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	defer f.Close()
	content, ok := f.(io.ReadSeeker)
	if !ok {
		httpapi.WriteError(w, r, fmt.Errorf("client: %s is not seekable", name))
		return
	}
	if strings.HasPrefix(name, "assets/") {
		w.Header().Set("Cache-Control", cacheImmutable)
		w.Header().Add("Vary", "Accept-Encoding")
		if gz := s.gzipped(name, content); gz != nil && acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(gz))
			return
		}
	} else {
		w.Header().Set("Cache-Control", cacheRevalidate)
		if tag := s.etag(name); tag != "" {
			w.Header().Set("ETag", tag)
		}
	}
	// Embedded files have no modification time: revalidation goes by ETag.
	http.ServeContent(w, r, name, time.Time{}, content)
}

// compressible are the asset types worth compressing (images and fonts are compressed already).
var compressible = map[string]bool{".js": true, ".css": true, ".svg": true, ".json": true, ".html": true, ".map": true}

// gzipped returns the asset gzipped, compressed once on first use, or nil when compression
// does not pay: Kourier and the local ingress pass bodies through as they are, and the app's
// script is about a third of its size gzipped, which matters on a phone.
func (s *site) gzipped(name string, content io.ReadSeeker) []byte {
	if gz, ok := s.gzips.Load(name); ok {
		return gz.([]byte)
	}
	var gz []byte
	if compressible[path.Ext(name)] {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		n, err := io.Copy(zw, content)
		if zw.Close() == nil && err == nil && int64(buf.Len()) < n {
			gz = buf.Bytes()
		}
		if _, err := content.Seek(0, io.SeekStart); err != nil {
			return nil
		}
	}
	s.gzips.Store(name, gz)
	return gz
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0"
		}
	}
	return false
}

// etag returns the file's content hash, computed once on first use (start-up stays instant).
func (s *site) etag(name string) string {
	if tag, ok := s.etags.Load(name); ok {
		return tag.(string)
	}
	data, err := fs.ReadFile(s.dist, name)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	tag := `"` + hex.EncodeToString(sum[:8]) + `"`
	s.etags.Store(name, tag)
	return tag
}
