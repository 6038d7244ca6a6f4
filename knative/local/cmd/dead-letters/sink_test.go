package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tickit/tickit/knative/local/backing"
)

// startNATS runs an embedded NATS JetStream with its file store in dir.
func startNATS(t *testing.T, dir string) *backing.NATS {
	t.Helper()
	n, err := backing.StartNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// pod is one dead-letters process: a sink of its own, on n.
func pod(t *testing.T, n *backing.NATS) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newSink(func() (jetstream.JetStream, error) { return n.JS, nil }, log.New(io.Discard, "", 0)))
	t.Cleanup(srv.Close)
	return srv
}

// post sends a binary-mode CloudEvent as the NATS dispatcher sends a dead letter.
func post(t *testing.T, url, id string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"orderId":"o-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"ce-specversion": "1.0", "ce-id": id, "ce-source": "/tickit/orders", "ce-type": "dev.tickit.order.created",
		"ce-knativeerrorcode": "400", "ce-knativeerrordest": "http://tickets.tickit.svc.cluster.local",
		"Content-Type": "application/json",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// list is what GET / answers, one structured CloudEvent per line.
func list(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", resp.Status)
	}
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestADeadLetterOutlivesThePodAndNATSRestarts(t *testing.T) {
	// Arrange
	dir := t.TempDir()
	n := startNATS(t, dir)
	first := pod(t, n)

	// Act: one pod takes a dead letter (twice, as a retried delivery would), then goes away;
	// NATS restarts on its store; another pod lists.
	if code := post(t, first.URL, "e-1"); code != http.StatusAccepted {
		t.Fatalf("POST: %d, want 202", code)
	}
	if code := post(t, first.URL, "e-1"); code != http.StatusAccepted {
		t.Fatalf("POST again: %d, want 202", code)
	}
	first.Close()
	n.Close()
	got := list(t, pod(t, startNATS(t, dir)).URL)

	// Assert
	if len(got) != 1 {
		t.Fatalf("listed %d dead letters, want 1: %v", len(got), got)
	}
	e := got[0]
	if e["id"] != "e-1" || e["type"] != "dev.tickit.order.created" || e["knativeerrorcode"] != "400" ||
		e["knativeerrordest"] != "http://tickets.tickit.svc.cluster.local" {
		t.Errorf("stored %v: want the event with its knativeerror* extensions", e)
	}
	if d, _ := json.Marshal(e["data"]); string(d) != `{"orderId":"o-1"}` {
		t.Errorf("data %s", d)
	}
}

func TestWithoutNATSTheSenderKeepsTheEvent(t *testing.T) {
	// Arrange: NATS is unreachable for the first request only.
	n := startNATS(t, t.TempDir())
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(newSink(func() (jetstream.JetStream, error) {
		if down.Load() {
			return nil, errors.New("connection refused")
		}
		return n.JS, nil
	}, log.New(io.Discard, "", 0)))
	defer srv.Close()

	// Act + Assert: 503 (the dispatcher retries or keeps it), then stored once NATS answers.
	if code := post(t, srv.URL, "e-2"); code != http.StatusServiceUnavailable {
		t.Fatalf("POST without NATS: %d, want 503", code)
	}
	down.Store(false)
	if code := post(t, srv.URL, "e-2"); code != http.StatusAccepted {
		t.Fatalf("POST with NATS back: %d, want 202", code)
	}
	if got := list(t, srv.URL); len(got) != 1 || got[0]["id"] != "e-2" {
		t.Errorf("listed %v, want e-2", got)
	}
}

func TestBadRequestsAreRefusedInTheErrorFormat(t *testing.T) {
	srv := pod(t, startNATS(t, t.TempDir()))
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"not a CloudEvent", http.MethodPost, "/", `{"a":1}`, http.StatusBadRequest},
		{"another path", http.MethodGet, "/nope", "", http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Errors []struct{ Message string }
			}
			if resp.StatusCode != c.want || json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Errors) != 1 || body.Errors[0].Message == "" {
				t.Errorf("%s %s: %d %+v, want %d with one error message", c.method, c.path, resp.StatusCode, body, c.want)
			}
		})
	}
	// Health needs no NATS.
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %v %v", resp, err)
	}
}
