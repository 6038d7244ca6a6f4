package proof

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults sits in front of every function (system.Config.Wrap) and breaks deliveries on
// purpose while it is on: every event is delivered twice (the copy with a new id), some
// replica updates (ticket.updated to orders, order.* to payments) are held back (503, so
// later versions overtake them) and old ones delivered again after newer ones, and one
// function answers 500 for a while.
type Faults struct {
	on        atomic.Bool
	failing   atomic.Value // string: the function answering 500, "" for none
	rnd       *rand.Rand
	mu        sync.Mutex
	lastByKey map[string][]byte // the last ticket.updated body delivered to orders, by ticket
	header    map[string]http.Header

	Duplicated, HeldBack, Stale, Failed atomic.Int64
}

// NewFaults returns the faults, off.
func NewFaults(seed uint64) *Faults {
	f := &Faults{rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), lastByKey: map[string][]byte{}, header: map[string]http.Header{}}
	f.failing.Store("")
	return f
}

// Start and Stop switch every fault on and off.
func (f *Faults) Start() { f.on.Store(true) }
func (f *Faults) Stop()  { f.on.Store(false); f.failing.Store("") }

// Fail makes the function answer 500 to everything ("" stops it).
func (f *Faults) Fail(function string) { f.failing.Store(function) }

func (f *Faults) chance(p float64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64() < p
}

// Wrap is the system.Config.Wrap hook.
func (f *Faults) Wrap(function string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.on.Load() {
			h.ServeHTTP(w, r)
			return
		}
		if f.failing.Load().(string) == function && r.URL.Path != "/healthz" {
			f.Failed.Add(1)
			http.Error(w, "injected fault", http.StatusInternalServerError)
			return
		}
		id, typ := r.Header.Get("Ce-Id"), r.Header.Get("Ce-Type")
		if id == "" || r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Events that update a replica: orders' copy of tickets, payments' copy of orders.
		replica := function == "orders" && typ == "dev.tickit.ticket.updated" ||
			function == "payments" && strings.HasPrefix(typ, "dev.tickit.order.")
		if replica && f.chance(0.2) {
			f.HeldBack.Add(1) // the Broker retries it after its backoff: later versions overtake it
			http.Error(w, "held back to reorder", http.StatusServiceUnavailable)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, clone(r, body, id))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		// The copy with a new id, as a second delivery of the same fact; its answer is dropped.
		f.Duplicated.Add(1)
		go h.ServeHTTP(httptest.NewRecorder(), clone(r, body, id+"-dup"))
		if replica && rec.Code < 300 {
			f.stale(h, r, body)
		}
	})
}

// stale remembers the delivered replica update and, now and then, delivers the previous one
// about the same subject again: an old version arriving after a newer one.
func (f *Faults) stale(h http.Handler, r *http.Request, body []byte) {
	key := r.Header.Get("Ce-Subject")
	f.mu.Lock()
	prev, prevHeader := f.lastByKey[key], f.header[key]
	f.lastByKey[key], f.header[key] = body, r.Header.Clone()
	again := prev != nil && f.rnd.Float64() < 0.5
	f.mu.Unlock()
	if !again {
		return
	}
	f.Stale.Add(1)
	old := r.Clone(r.Context())
	old.Header = prevHeader
	go h.ServeHTTP(httptest.NewRecorder(), clone(old, prev, fmt.Sprintf("%s-stale-%d", prevHeader.Get("Ce-Id"), time.Now().UnixNano())))
}

// clone is the request again with the body and the CloudEvent id; it outlives the original.
func clone(r *http.Request, body []byte, id string) *http.Request {
	c := r.Clone(context.WithoutCancel(r.Context()))
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	c.Header.Set("Ce-Id", id)
	return c
}
