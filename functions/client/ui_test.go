package main

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestAppRoutesServeIndexHTMLUncached(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	for _, path := range []string{"/", "/index.html", "/tickets/65a1b2c3d4e5f60718293a4c", "/orders", "/auth/signin?next=/orders", "/deep/unknown/path"} {
		t.Run(path, func(t *testing.T) {
			resp, body := do(t, "GET", g.URL+path, "", nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<div id="root">`) {
				t.Fatalf("status %d body %q, want index.html", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("Content-Type %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Fatalf("Cache-Control %q, want no-cache: a new deploy must reach browsers", cc)
			}
		})
	}
}

func TestHashedAssetsAreImmutable(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	for path, contentType := range map[string]string{
		"/assets/index-AbC123.js": "text/javascript",
		"/assets/index-Zz9.css":   "text/css",
	} {
		resp, body := do(t, "GET", g.URL+path, "", nil)
		if resp.StatusCode != http.StatusOK || body == "" {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, contentType) {
			t.Fatalf("%s: Content-Type %q, want %s", path, ct, contentType)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Fatalf("%s: Cache-Control %q, want immutable", path, cc)
		}
	}
	// Files outside assets/ keep their names across builds: revalidated, not immutable.
	if resp, _ := do(t, "GET", g.URL+"/favicon.svg", "", nil); resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("favicon Cache-Control %q, want no-cache", resp.Header.Get("Cache-Control"))
	}
}

func TestAssetsAreGzippedForBrowsersThatAcceptIt(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	cases := []struct {
		name, path, acceptEncoding string
		gzipped                    bool
	}{
		{"a browser's usual header", "/assets/vendor-Big1.js", "gzip, deflate, br, zstd", true},
		{"gzip alone, any case", "/assets/vendor-Big1.js", "GZIP", true},
		{"no Accept-Encoding", "/assets/vendor-Big1.js", "", false},
		{"gzip refused", "/assets/vendor-Big1.js", "gzip;q=0, br", false},
		{"an asset too small to gain", "/assets/index-AbC123.js", "gzip", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Act
			resp, body := do(t, "GET", g.URL+c.path, "", map[string]string{"Accept-Encoding": c.acceptEncoding})

			// Assert: the same bytes either way, gzipped only when asked and worth it.
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("status %d, Vary %q", resp.StatusCode, resp.Header.Get("Vary"))
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != c.gzipped {
				t.Fatalf("Content-Encoding %q, want gzipped=%v", resp.Header.Get("Content-Encoding"), c.gzipped)
			}
			if c.gzipped {
				zr, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil || string(plain) != bigScript || len(body) >= len(bigScript) {
					t.Fatalf("gunzipped %d bytes (%v) from %d, want the %d-byte script, smaller", len(plain), err, len(body), len(bigScript))
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
					t.Fatalf("Content-Type %q of the gzipped script", ct)
				}
			} else if want := string(builtApp()["dist"+c.path].Data); body != want {
				t.Fatalf("body of %d bytes, want the file's %d", len(body), len(want))
			}
		})
	}
}

func TestAMissingAssetIsA404NotTheApp(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	resp := testenv.Call(t, "GET", g.URL+"/assets/index-OldHash.js", nil, "")
	if resp.Status != http.StatusNotFound || strings.Contains(string(resp.Body), "root") {
		t.Fatalf("status %d body %s, want 404", resp.Status, resp.Body)
	}
}

func TestIndexHTMLRevalidatesByETag(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	first, _ := do(t, "GET", g.URL+"/", "", nil)
	tag := first.Header.Get("ETag")
	if tag == "" {
		t.Fatal("index.html has no ETag")
	}
	again, body := do(t, "GET", g.URL+"/orders", "", map[string]string{"If-None-Match": tag})
	if again.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("status %d, want 304 for an unchanged index.html", again.StatusCode)
	}
}

func TestOnlyGETAndHEADReachTheApp(t *testing.T) {
	g := newGateway(t, builtApp(), "")
	if resp, body := do(t, "HEAD", g.URL+"/tickets/new", "", nil); resp.StatusCode != http.StatusOK || body != "" {
		t.Fatalf("HEAD: status %d body %q", resp.StatusCode, body)
	}
	resp := testenv.Call(t, "PUT", g.URL+"/tickets/new", "{}", "")
	if resp.Status != http.StatusMethodNotAllowed || resp.Errors(t).Errors[0].Message != "Method Not Allowed" {
		t.Fatalf("PUT: status %d body %s, want 405 in the error format", resp.Status, resp.Body)
	}
	if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
		t.Fatalf("Allow %q", allow)
	}
}

func TestWithoutABuiltUIEveryPageSaysHowToBuildIt(t *testing.T) {
	// Arrange: the ui folder as a fresh clone has it.
	g := newGateway(t, fstest.MapFS{"not-built.html": {Data: []byte("<h1>UI not built</h1><pre>make ui</pre>")}}, "")

	for _, path := range []string{"/", "/orders", "/assets/index-AbC123.js"} {
		// Act
		resp, body := do(t, "GET", g.URL+path, "", nil)

		// Assert: a page naming the command, not cached, with a status that says it is missing.
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "make ui") {
			t.Fatalf("%s: status %d body %q, want 503 and the not-built page", path, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("%s: Cache-Control %q, want no-store", path, cc)
		}
	}
	// The API and health check work all the same.
	if resp := testenv.Call(t, "GET", g.URL+"/api/tickets", nil, ""); resp.Status != http.StatusCreated {
		t.Fatalf("API status %d without a UI", resp.Status)
	}
	if resp := testenv.Call(t, "GET", g.URL+"/healthz", nil, ""); resp.Status != http.StatusOK {
		t.Fatalf("healthz %d without a UI", resp.Status)
	}
}

func TestTheEmbeddedUIAlwaysHasTheNotBuiltPage(t *testing.T) {
	// A fresh clone compiles because ui/not-built.html is committed; this is that file.
	page, err := fs.ReadFile(builtUI(), "not-built.html")
	if err != nil || !strings.Contains(string(page), "make ui") {
		t.Fatalf("ui/not-built.html: %v %q", err, page)
	}
	if _, err := newUI(builtUI()); err != nil {
		t.Fatalf("the embedded UI does not serve: %v", err)
	}
}

func TestAUIFolderWithNeitherPageIsAStartUpError(t *testing.T) {
	_, err := NewFunction(Config{AuthURL: "http://a", TicketsURL: "http://t", OrdersURL: "http://o", PaymentsURL: "http://p", UI: fstest.MapFS{}})
	if err == nil {
		t.Fatal("want an error for a UI folder without index.html or not-built.html")
	}
}
