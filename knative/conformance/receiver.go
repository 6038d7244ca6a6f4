package main

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// event is a CloudEvent as received: its attributes and extensions by name, and its data.
type event struct {
	attrs    map[string]string
	data     []byte
	received time.Time
}

// receiver is an HTTP CloudEvents sink inside the harness. It stands in for the
// dead-letters Service (whose image, Knative's event_display, cannot run without a
// container runtime) and receives the latency probes; it records every event.
type receiver struct {
	mu     sync.Mutex
	events []event
	notify chan struct{}
	addr   string
	// answer, when set, decides the status of a delivery (after waiting delay): n counts
	// the deliveries of the event's id so far, this one included. Unset: 202 at once.
	answer func(e event, n int) (status int, delay time.Duration)
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{notify: make(chan struct{}, 1), addr: ln.Addr().String()}
	go func() { _ = http.Serve(ln, r) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e := event{attrs: map[string]string{}, received: time.Now()}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt == "application/cloudevents+json" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				e.attrs[k] = s
			} else {
				e.attrs[k] = string(v)
			}
		}
		e.data = m["data"]
	} else {
		for k, v := range req.Header {
			if name, ok := strings.CutPrefix(strings.ToLower(k), "ce-"); ok {
				e.attrs[name] = v[0]
			}
		}
		e.data = body
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	n := 0
	for _, x := range r.events {
		if x.attrs["id"] == e.attrs["id"] {
			n++
		}
	}
	answer := r.answer
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	status := http.StatusAccepted
	if answer != nil {
		var delay time.Duration
		status, delay = answer(e, n)
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(status)
}

// setAnswer replaces how the receiver answers (nil: 202 at once).
func (r *receiver) setAnswer(f func(e event, n int) (int, time.Duration)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// deliveries returns every delivery of the events whose id starts with prefix, by id, in
// the order they arrived.
func (r *receiver) deliveries(prefix string) map[string][]event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]event{}
	for _, e := range r.events {
		if id := e.attrs["id"]; strings.HasPrefix(id, prefix) {
			out[id] = append(out[id], e)
		}
	}
	return out
}

// waitFor returns the first event for which match is true.
func (r *receiver) waitFor(ctx context.Context, timeout time.Duration, match func(event) bool) (event, bool) {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if match(e) {
				r.mu.Unlock()
				return e, true
			}
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return event{}, false
		case <-deadline:
			return event{}, false
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// collect waits until n events whose id starts with prefix arrived, and returns them.
func (r *receiver) collect(ctx context.Context, timeout time.Duration, prefix string, n int) ([]event, bool) {
	deadline := time.After(timeout)
	for {
		var got []event
		r.mu.Lock()
		for _, e := range r.events {
			if strings.HasPrefix(e.attrs["id"], prefix) {
				got = append(got, e)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got, true
		}
		select {
		case <-ctx.Done():
			return got, false
		case <-deadline:
			return got, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
