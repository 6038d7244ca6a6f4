package delivery

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// RunTimeout bounds Run when ctx has no deadline.
const RunTimeout = 3 * time.Minute

// EventType is the type of the scenario's event; Run routes exactly this type to it.
func EventType(scenario string) string { return "dev.tickit.delivery." + scenario }

// TriggerName is the name of the scenario's Trigger.
func TriggerName(scenario string) string { return "delivery-" + scenario }

// Run routes every scenario to its own subscriber and dead-letter sink (loopback httptest
// servers it starts and stops), posts one event per scenario (two with the same id for
// "duplicate-id"), waits until nothing has happened for Settle(TableSpec) and reports what each
// scenario did, in the order of Scenarios. It ends by ctx's deadline (RunTimeout without one):
// what has not settled by then is an error, with the results seen so far.
func Run(ctx context.Context, b Broker) ([]Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, RunTimeout)
		defer cancel()
	}
	spec := TableSpec
	timeout, err := ParseDuration(spec.Timeout)
	if err != nil {
		return nil, fmt.Errorf("delivery: TableSpec timeout: %w", err)
	}
	r := &run{timeout: timeout, state: map[string]*state{}}
	for _, sc := range scenarios(spec) {
		r.state[sc.name] = &state{sc: sc}
		r.order = append(r.order, sc.name)
	}
	sub := httptest.NewServer(http.HandlerFunc(r.serveSubscriber))
	defer sub.Close()
	dls := httptest.NewServer(http.HandlerFunc(r.serveDeadLetter))
	defer dls.Close()
	refused, err := closedPort()
	if err != nil {
		return nil, err
	}
	r.names = strings.NewReplacer(sub.URL, "{subscriber}", refused, "{refused}",
		strings.TrimPrefix(sub.URL, "http://"), "{subscriber-host}", strings.TrimPrefix(refused, "http://"), "{refused-host}")

	for _, name := range r.order {
		st := r.state[name]
		target := sub.URL + "/" + name
		if st.sc.answer == nil {
			target = refused + "/" + name
		}
		if err := b.Route(ctx, TriggerName(name), EventType(name), target, dls.URL+"/"+name, spec); err != nil {
			return nil, fmt.Errorf("delivery: route %s: %w", name, err)
		}
		if st.sc.replies {
			if err := b.Route(ctx, TriggerName(name+"-replies"), ReplyType, sub.URL+"/"+name+"/replies", dls.URL+"/"+name+"/replies", spec); err != nil {
				return nil, fmt.Errorf("delivery: route the replies of %s: %w", name, err)
			}
		}
	}

	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, name := range r.order {
		st := r.state[name]
		e := cloudevents.NewEvent()
		e.SetID("delivery-" + name + "-" + nonce)
		e.SetType(EventType(name))
		e.SetSource("/tickit/delivery")
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"scenario": name})
		posts := max(st.sc.posts, 1)
		r.mu.Lock()
		st.sent = time.Now()
		r.last = st.sent
		r.mu.Unlock()
		for range posts {
			if err := post(ctx, b.Ingress(), e); err != nil {
				return nil, fmt.Errorf("delivery: post %s: %w", name, err)
			}
		}
	}

	settle := Settle(spec)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		quiet := time.Since(r.last)
		r.mu.Unlock()
		if quiet >= settle {
			return r.results(), nil
		}
		select {
		case <-ctx.Done():
			return r.results(), fmt.Errorf("delivery: the scenarios did not settle (%v without news) before the deadline: %w", settle, ctx.Err())
		case <-tick.C:
		}
	}
}

// Settle is how long Run waits after the last thing it saw before it calls the scenarios done:
// twice the longest gap the spec allows between two attempts (the attempt's timeout, half a
// second of JetStream's ack-wait margin, the longest backoff), plus a second.
func Settle(spec Spec) time.Duration {
	timeout, _ := ParseDuration(spec.Timeout)
	delay, _ := ParseDuration(spec.BackoffDelay)
	longest := delay * time.Duration(spec.Retry+1)
	if spec.BackoffPolicy != "linear" {
		longest = delay << min(spec.Retry+1, 20)
	}
	return 2*(timeout+500*time.Millisecond+longest) + time.Second
}

type run struct {
	timeout time.Duration
	order   []string
	state   map[string]*state
	names   *strings.Replacer // the servers' addresses, written as placeholders

	mu   sync.Mutex
	last time.Time // the latest post or arrival of any scenario
}

type state struct {
	sc       scenario
	sent     time.Time
	attempts []time.Time
	answers  []answer
	dead     []cloudevents.Event
	replies  int
	last     time.Time
}

// seen notes an arrival for st; the caller holds r.mu.
func (r *run) seen(st *state) {
	now := time.Now()
	st.last, r.last = now, now
}

// route finds the scenario of a request path: /<scenario> or /<scenario>/replies.
func (r *run) route(path string) (st *state, replies bool) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return r.state[name], rest == "replies"
}

func (r *run) serveSubscriber(w http.ResponseWriter, req *http.Request) {
	e, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
	st, replies := r.route(req.URL.Path)
	if err != nil || st == nil {
		http.Error(w, "not a scenario's CloudEvent", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.seen(st)
	if replies {
		st.replies++
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	st.attempts = append(st.attempts, time.Now())
	a := st.sc.answer(len(st.attempts))
	st.answers = append(st.answers, a)
	r.mu.Unlock()

	if a.slow {
		select {
		case <-time.After(r.timeout + time.Second):
		case <-req.Context().Done():
			return
		}
	}
	switch {
	case a.reply:
		reply := cloudevents.NewEvent()
		reply.SetID("reply-" + e.ID())
		reply.SetType(ReplyType)
		reply.SetSource("/tickit/delivery")
		_ = reply.SetData(cloudevents.ApplicationJSON, map[string]string{"replyTo": e.ID()})
		_ = cehttp.WriteResponseWriter(req.Context(), binding.ToMessage(&reply), a.code, w)
	case a.body != "":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	default:
		w.WriteHeader(a.code)
	}
}

func (r *run) serveDeadLetter(w http.ResponseWriter, req *http.Request) {
	e, err := binding.ToEvent(req.Context(), cehttp.NewMessageFromHttpRequest(req))
	st, _ := r.route(req.URL.Path)
	if err != nil || st == nil {
		http.Error(w, "not a scenario's CloudEvent", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.seen(st)
	st.dead = append(st.dead, *e)
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (r *run) results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var list []Result
	for _, name := range r.order {
		st := r.state[name]
		res := Result{Scenario: name, Attempts: len(st.attempts), DeadLetters: len(st.dead), Replies: st.replies}
		for i := 1; i < len(st.attempts); i++ {
			res.Delays = append(res.Delays, st.attempts[i].Sub(st.attempts[i-1]))
		}
		if !st.last.IsZero() {
			res.Elapsed = st.last.Sub(st.sent)
		}
		switch n := len(st.answers); {
		case len(st.dead) > 0:
			res.Outcome = DeadLettered
			res.DeadLetterExtensions = r.extensions(st.dead[0])
		case n > 0 && st.answers[n-1].code/100 == 2 && !st.answers[n-1].slow:
			res.Outcome = Acked
		default:
			res.Outcome = Dropped
		}
		list = append(list, res)
	}
	return list
}

// extensions keeps the knative* extensions of a dead letter as text, with the scenario's
// servers as placeholders, knativearrivaltime as {time} and knativeerrordata decoded when it
// is base64 of UTF-8 text.
func (r *run) extensions(e cloudevents.Event) map[string]string {
	m := map[string]string{}
	for k, v := range e.Extensions() {
		if !strings.HasPrefix(k, "knative") {
			continue
		}
		s, err := types.Format(v)
		if err != nil {
			s = fmt.Sprint(v)
		}
		if k == "knativearrivaltime" { // a time: only its presence can agree
			s = "{time}"
		}
		if k == "knativeerrordata" {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && utf8.Valid(b) {
				s = string(b)
			}
		}
		m[k] = r.names.Replace(s)
	}
	return m
}

// post sends e to the ingress in binary mode and wants a 2xx.
func post(ctx context.Context, ingress string, e cloudevents.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ingress, nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the ingress answered %d", resp.StatusCode)
	}
	return nil
}

// closedPort returns the URL of a loopback port nobody listens on (it was just closed).
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

// ParseDuration reads an ISO-8601 duration of a delivery spec (PnDTnHnMnS, the last number may
// have a fraction: "PT0.5S"); "" is 0.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration", s)
	}
	var d time.Duration
	inTime, numbers := false, 0
	units := map[bool]map[byte]time.Duration{
		false: {'D': 24 * time.Hour},
		true:  {'H': time.Hour, 'M': time.Minute, 'S': time.Second},
	}
	for rest != "" {
		if rest[0] == 'T' && !inTime {
			inTime, rest = true, rest[1:]
			continue
		}
		i := strings.IndexFunc(rest, func(c rune) bool { return (c < '0' || c > '9') && c != '.' })
		if i <= 0 {
			return 0, fmt.Errorf("%q is not an ISO-8601 duration", s)
		}
		unit, ok := units[inTime][rest[i]]
		if !ok {
			return 0, fmt.Errorf("%q: unit %q is not one of a delivery spec", s, rest[i])
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, errors.Join(fmt.Errorf("%q is not an ISO-8601 duration", s), err)
		}
		d += time.Duration(n * float64(unit))
		rest = rest[i+1:]
		numbers++
	}
	if numbers == 0 {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration", s)
	}
	return d, nil
}
