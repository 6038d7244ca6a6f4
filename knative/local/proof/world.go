// Package proof measures the whole system (make bench) and breaks it on purpose (make chaos):
// it starts tickit in-process on a fresh data dir from the manifests, exactly as make run
// does, and drives it through the ingress only, as users and the cluster would.
package proof

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tickit/tickit/knative/local/system"
)

// World is one running system and a SendGrid stand-in that records every email.
type World struct {
	*system.System
	Mail   *SendGrid
	client *http.Client
	config system.Config // to start the system again (Restart)
}

// Options say how to run the system; Settings are its environment (EXPIRATION_WINDOW,
// MONGO_URL, NATS_URL, ...), on top of which the SendGrid stand-in is set.
type Options struct {
	Root, Data string
	BinDir     string // where the functions are built (default Root/.tickit/proof-bin)
	Tick, Idle time.Duration
	Settings   map[string]string
	Wrap       func(function string, h http.Handler) http.Handler
	Output     io.Writer // the runtime's and the functions' output (default discarded)
}

// Start runs the system on a free port.
func Start(ctx context.Context, o Options) (*World, error) {
	mail := newSendGrid()
	settings := map[string]string{"SENDGRID_API_KEY": "SG.proof", "SENDGRID_API_BASE": mail.URL}
	for k, v := range o.Settings {
		settings[k] = v
	}
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	bin := o.BinDir
	if bin == "" {
		bin = filepath.Join(o.Root, ".tickit", "proof-bin")
	}
	config := system.Config{
		Root: o.Root, Data: o.Data, BinDir: bin,
		Addr: "127.0.0.1:0", Tick: o.Tick, Idle: o.Idle, Wrap: o.Wrap,
		Getenv: func(k string) string { return settings[k] },
		Out:    out, FunctionOutput: out,
	}
	sys, err := system.Start(ctx, config)
	if err != nil {
		mail.Close()
		return nil, err
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
	}}
	return &World{System: sys, Mail: mail, client: client, config: config}, nil
}

// Restart stops the system and starts it again on the same data dir and settings, on a new
// free port; the stand-in keeps what it recorded.
func (w *World) Restart(ctx context.Context) error {
	w.System.Close()
	sys, err := system.Start(ctx, w.config)
	if err != nil {
		w.System = nil
		return err
	}
	w.System = sys
	return nil
}

// Close stops the system and the stand-in.
func (w *World) Close() {
	if w.System != nil {
		w.System.Close()
	}
	w.Mail.Close()
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// Decode reads the JSON body into v.
func (r Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("answer %d is not the JSON expected: %v: %.200s", r.Status, err, r.Body)
	}
	return nil
}

// Call sends a request through the ingress to host, with a bearer token when given.
func (w *World) Call(host, method, path string, body any, token string) (Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.URL()+path, rd)
	if err != nil {
		return Response{}, err
	}
	req.Host = host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s%s: %w", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}, err
}

// API calls a function at its external address, as a user of the API does.
func (w *World) API(function, method, path string, body any, token string) (Response, error) {
	return w.Call(function+"."+system.Namespace+"."+system.ExternalDomain, method, path, body, token)
}

// Internal calls a function at its cluster address (cluster-local functions too).
func (w *World) Internal(function, method, path string) (Response, error) {
	return w.Call(function+"."+system.Namespace+"."+system.InternalDomain, method, path, nil, "")
}

// SignUp creates a user and returns its session token.
func (w *World) SignUp(email string) (string, error) {
	r, err := w.API("auth", "POST", "/api/users/signup", map[string]string{"email": email, "password": "correct horse battery"}, "")
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusCreated {
		return "", fmt.Errorf("sign up %s: %d %.200s", email, r.Status, r.Body)
	}
	return sessionToken(r)
}

func sessionToken(r Response) (string, error) {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "session" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("no session cookie in a %d answer", r.Status)
}

// Ticket and Order are what the API shows of them.
type Ticket struct {
	ID, Title, UserID, OrderID string
	Price                      float64
	Version                    int64
	Sold                       bool
}

type Order struct {
	ID, Status, UserID, PaymentID string
	ExpiresAt                     time.Time
	Version                       int64
	Ticket                        struct{ ID string }
}

type Payment struct {
	ID, OrderID, StripeID, Status string
	Amount                        int64
}

// Sell creates a ticket.
func (w *World) Sell(token, title string, price float64) (Ticket, error) {
	var t Ticket
	r, err := w.API("tickets", "POST", "/api/tickets", map[string]any{"title": title, "price": price}, token)
	if err != nil {
		return t, err
	}
	if r.Status != http.StatusCreated {
		return t, fmt.Errorf("sell %q: %d %.200s", title, r.Status, r.Body)
	}
	return t, r.Decode(&t)
}

// Eventually polls cond every 20 ms until it holds or the timeout passes.
func Eventually(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v waiting: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SendGrid stands in for SendGrid's mail/send API and records each email.
type SendGrid struct {
	*httptest.Server
	mu     sync.Mutex
	emails []string
}

func newSendGrid() *SendGrid {
	s := &SendGrid{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.URL.Path != "/v3/mail/send" || r.Header.Get("Authorization") != "Bearer SG.proof" || err != nil || !json.Valid(body) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.emails = append(s.emails, string(body))
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	return s
}

// About counts the emails that mention s (an order id).
func (s *SendGrid) About(x string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.emails {
		if strings.Contains(m, x) {
			n++
		}
	}
	return n
}

// Count is how many emails were sent.
func (s *SendGrid) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.emails)
}

// To returns the emails sent to address (those whose personalizations name it), decoded.
func (s *SendGrid) To(address string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, e := range s.emails {
		var m map[string]any
		if json.Unmarshal([]byte(e), &m) == nil && strings.Contains(fmt.Sprint(m["personalizations"]), address) {
			out = append(out, m)
		}
	}
	return out
}
