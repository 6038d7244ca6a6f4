package backing_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/system"
)

// startJaeger starts Jaeger on a free port with the UI assets given ("" for none); the test
// is skipped unless make trace-e2e runs it, since the first run builds Jaeger (~3 min).
func startJaeger(t *testing.T, assets string) *backing.Jaeger {
	t.Helper()
	if os.Getenv("TICKIT_TRACE_E2E") == "" {
		t.Skip("make trace-e2e runs this (TICKIT_TRACE_E2E=1): it builds and starts Jaeger")
	}
	j, err := tryJaeger(t, assets)
	if err != nil {
		t.Fatalf("StartJaeger: %v", err)
	}
	t.Cleanup(j.Close)
	return j
}

// tryJaeger starts Jaeger from this repository on a free loopback port with the UI assets given.
func tryJaeger(t *testing.T, assets string) (*backing.Jaeger, error) {
	t.Helper()
	root, err := system.Root()
	if err != nil {
		t.Fatal(err)
	}
	port, err := backing.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return backing.StartJaeger(root, fmt.Sprintf("127.0.0.1:%d", port), assets, io.Discard)
}

// get answers a GET with its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestJaegerServesTheUIAssetsItIsGiven(t *testing.T) {
	// Arrange: a folder shaped like jaeger-ui's build, its index.html with the placeholder
	// Jaeger fills in at start.
	assets := t.TempDir()
	index := `<!doctype html><html><head><base href="/" /><script>const JAEGER_VERSION = DEFAULT_VERSION;</script></head><body>tickit test UI</body></html>`
	if err := os.WriteFile(filepath.Join(assets, "index.html"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(assets, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assets, "static", "app.js"), []byte("console.log('tickit test UI')"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Act
	j := startJaeger(t, assets)

	// Assert: / is that index.html, filled in by Jaeger; static/ is served; the API still answers.
	status, body := get(t, j.UI+"/")
	if status != http.StatusOK || !strings.Contains(body, "tickit test UI") {
		t.Fatalf("GET /: %d %.300q; want 200 and the index.html of JAEGER_UI_ASSETS", status, body)
	}
	if strings.Contains(body, "DEFAULT_VERSION") || !strings.Contains(body, "JAEGER_VERSION = {") {
		t.Errorf("GET /: %.300q; want JAEGER_VERSION filled in by Jaeger", body)
	}
	if status, body := get(t, j.UI+"/search"); status != http.StatusOK || !strings.Contains(body, "tickit test UI") {
		t.Errorf("GET /search (a route of the UI): %d %.300q; want the index.html", status, body)
	}
	if status, body := get(t, j.UI+"/static/app.js"); status != http.StatusOK || !strings.Contains(body, "tickit test UI") {
		t.Errorf("GET /static/app.js: %d %.300q; want the file", status, body)
	}
	if status, body := get(t, j.UI+"/api/services"); status != http.StatusOK || !strings.Contains(body, `"data"`) {
		t.Errorf("GET /api/services: %d %.300q; want the query API's answer", status, body)
	}
}

func TestJaegerWithoutAssetsServesItsPlaceholderPage(t *testing.T) {
	j := startJaeger(t, "")

	status, body := get(t, j.UI+"/")

	if status != http.StatusOK || !strings.Contains(body, "This is not the Jaeger UI you are looking for") {
		t.Fatalf("GET /: %d %.300q; want Jaeger's placeholder page", status, body)
	}
}

func TestJaegerRefusesUIAssetsWithoutIndexHTML(t *testing.T) {
	// Arrange: a folder that is not jaeger-ui's build (the tarball unpacked one level too high).
	assets := t.TempDir()
	if err := os.Mkdir(filepath.Join(assets, "packages"), 0o755); err != nil {
		t.Fatal(err)
	}

	// Act
	j, err := tryJaeger(t, assets)

	// Assert: refused before Jaeger starts, with a message naming the setting and the file.
	if err == nil {
		j.Close()
		t.Fatal("StartJaeger started with a folder holding no index.html; want an error")
	}
	for _, want := range []string{"JAEGER_UI_ASSETS=" + assets, "no index.html", "jaeger-ui's build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
