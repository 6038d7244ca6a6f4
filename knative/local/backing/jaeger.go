package backing

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickit/tickit/knative/local/proc"
)

// JaegerUI is where Jaeger's web UI and query API (/api/services, /api/traces) listen by
// default. The module build has no UI of its own (its assets are built from jaeger-ui, which no
// package registry serves): without assets / shows Jaeger's placeholder page and make trace
// reads the API. The cluster's image has the UI (config/40-jaeger.yaml).
const JaegerUI = "127.0.0.1:16686"

// Jaeger is the trace viewer: Jaeger v2 with traces in memory.
type Jaeger struct {
	UI   string // e.g. http://127.0.0.1:16686: the UI and the query API
	OTLP string // e.g. http://127.0.0.1:43187: OTLP over HTTP, for OTEL_EXPORTER_OTLP_ENDPOINT
	stop func()
}

// StartJaeger runs Jaeger, the tool pinned in knative/local/tools/jaeger (built on first use,
// ~3 min, then taken from Go's build cache), with that folder's jaeger.yaml: OTLP/HTTP on a
// free loopback port, the UI and query API on ui (JaegerUI when empty), nothing else. assets
// is a folder of jaeger-ui's build (index.html and static/, JAEGER_UI_ASSETS) that Jaeger
// serves as its UI; empty keeps the placeholder page.
func StartJaeger(root, ui, assets string, output io.Writer) (*Jaeger, error) {
	if ui == "" {
		ui = JaegerUI
	}
	if assets != "" {
		// Jaeger would panic on a folder without index.html, after its other extensions started.
		abs, err := filepath.Abs(assets)
		if err != nil {
			return nil, fmt.Errorf("jaeger: JAEGER_UI_ASSETS=%s: %w", assets, err)
		}
		if _, err := os.Stat(filepath.Join(abs, "index.html")); err != nil {
			return nil, fmt.Errorf("jaeger: JAEGER_UI_ASSETS=%s holds no index.html: want the folder of jaeger-ui's build (index.html and static/; README: Follow a purchase)", assets)
		}
		assets = abs
	}
	if listening(ui) {
		return nil, fmt.Errorf("jaeger: %s is taken (another make run with TRACE=1?); JAEGER_UI=127.0.0.1:<port> picks another", ui)
	}
	dir := filepath.Join(root, "knative", "local", "tools", "jaeger")
	var stderr bytes.Buffer
	tool := exec.Command("go", "tool", "-n", "jaeger")
	tool.Dir, tool.Stderr = dir, &stderr
	tool.Env = append(os.Environ(), "GOWORK=off") // a module of its own, outside go.work
	out, err := tool.Output()
	if err != nil {
		return nil, fmt.Errorf("jaeger: go tool -n jaeger: %v: %s", err, stderr.String())
	}
	ports := map[string]int{}
	for _, name := range []string{"JAEGER_OTLP_HTTP", "JAEGER_QUERY_GRPC", "JAEGER_HEALTH"} {
		if ports[name], err = FreePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(strings.TrimSpace(string(out)), "--config", "file:"+filepath.Join(dir, "jaeger.yaml"))
	// JAEGER_UI_ASSETS is always set, so a value in the caller's environment never leaks in.
	cmd.Env = append(os.Environ(), "JAEGER_QUERY_HTTP="+ui, "JAEGER_UI_ASSETS="+assets)
	for name, port := range ports {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=127.0.0.1:%d", name, port))
	}
	cmd.Stdout, cmd.Stderr = output, output
	if err := proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	j := &Jaeger{UI: "http://" + ui, OTLP: fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_OTLP_HTTP"]),
		stop: func() { proc.Stop(cmd, exited, 5*time.Second) }}
	deadline := time.Now().Add(60 * time.Second)
	for !answersAsJaeger(j.UI) || !listening(strings.TrimPrefix(j.OTLP, "http://")) {
		select {
		case <-exited:
			return nil, fmt.Errorf("jaeger exited at start (is %s taken?)", ui)
		default:
		}
		if time.Now().After(deadline) {
			j.stop()
			return nil, fmt.Errorf("jaeger did not answer on %s within a minute", j.UI)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return j, nil
}

// Close stops Jaeger (its traces are kept in memory only).
func (j *Jaeger) Close() { j.stop() }

// answersAsJaeger: base serves Jaeger's query API.
func answersAsJaeger(base string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(base + "/api/services")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"data"`))
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
