package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// newBenchHarness serves the function like the tests do, but without the request log lines,
// which would flood the benchmark output.
func newBenchHarness(b *testing.B) *harness {
	h := newUnserved(b)
	quiet := logging.WithLogger(context.Background(), zap.NewNop().Sugar())
	srv := httptest.NewUnstartedServer(runtime.Handler(quiet, h.Fn))
	srv.Config.BaseContext = func(net.Listener) context.Context { return quiet }
	srv.Start()
	b.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// listed puts n tickets of seller straight into the replica (what ticket.created does).
func (h *harness) listed(b *testing.B, seller testenv.User, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		id := primitive.NewObjectID()
		if _, err := h.Store.insertTicket(context.Background(), Ticket{ID: id, Title: "Bench", Price: 1000, UserID: seller.ID}); err != nil {
			b.Fatal(err)
		}
		ids[i] = id.Hex()
	}
	return ids
}

// BenchmarkOrdersOnDistinctTickets: buyers in parallel, each order for a ticket of its own
// (no contention): the throughput of POST /api/orders end to end over HTTP.
func BenchmarkOrdersOnDistinctTickets(b *testing.B) {
	h := newBenchHarness(b)
	tickets := h.listed(b, h.user(b, "seller"), b.N)
	buyers := make([]testenv.User, 16)
	for i := range buyers {
		buyers[i] = h.user(b, fmt.Sprint("buyer", i))
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			status, body, err := post(h.URL+"/api/orders", buyers[i%int64(len(buyers))].Token, map[string]string{"ticketId": tickets[i]})
			if err != nil || status != http.StatusCreated {
				b.Errorf("order %d: %d %s %v", i, status, body, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkContentionOneTicket: each round, N buyers order one fresh ticket at once; exactly
// one must win. Reports the latency of every request (winners and losers alike).
func BenchmarkContentionOneTicket(b *testing.B) {
	const buyers = 50
	h := newBenchHarness(b)
	tickets := h.listed(b, h.user(b, "seller"), b.N)
	users := make([]testenv.User, buyers)
	for i := range users {
		users[i] = h.user(b, fmt.Sprint("buyer", i))
	}
	latencies := make([]time.Duration, 0, b.N*buyers)
	var mu sync.Mutex
	b.ResetTimer()
	for round := range b.N {
		var wg sync.WaitGroup
		var won atomic.Int32
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				status, body, err := post(h.URL+"/api/orders", u.Token, map[string]string{"ticketId": tickets[round]})
				took := time.Since(start)
				switch {
				case err != nil:
					b.Error(err)
				case status == http.StatusCreated:
					won.Add(1)
				case status != http.StatusBadRequest:
					b.Errorf("%d %s", status, body)
				}
				mu.Lock()
				latencies = append(latencies, took)
				mu.Unlock()
			}()
		}
		testenv.Wait(b, &wg, 5*time.Minute, "the concurrent orders")
		if won.Load() != 1 {
			b.Fatalf("round %d: %d winners, want 1", round, won.Load())
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(buyers, "buyers/round")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
	b.ReportMetric(float64(b.N*buyers)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
