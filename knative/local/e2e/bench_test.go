package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/proof"
	"github.com/tickit/tickit/knative/local/system"
)

// BenchmarkEventsThroughTheBrokerToAFunction posts ping events to the Broker's cluster
// address through the ingress (16 publishers) and follows them on the Broker's feed until
// the expiration function answered each: events per second, and p50/p99 from the ingress
// storing an event to the function's answer.
func BenchmarkEventsThroughTheBrokerToAFunction(b *testing.B) {
	w := start(b, b.TempDir(), map[string]string{"IDLE": "10m"})
	if err := w.Service("expiration").Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	feed := w.follow(b)

	b.ResetTimer()
	start := time.Now()
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				w.publish(b, id)
			}
		}()
	}
	go func() {
		for i := range b.N {
			ids <- fmt.Sprintf("bench-%d", i)
		}
		close(ids)
	}()
	latencies := feed.wait(b, b.N)
	elapsed := time.Since(start)
	waitFor(b, &wg, "the publishers")
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkColdStart measures each function's cold start through the runtime: from exec to
// the first answered request (GET /healthz through the ingress).
func BenchmarkColdStart(b *testing.B) {
	w := start(b, b.TempDir(), map[string]string{"IDLE": "10m"})
	for _, name := range w.Names() {
		b.Run(name, func(b *testing.B) {
			fn := w.Service(name)
			var total time.Duration
			for range b.N {
				fn.ScaleToZero()
				began := time.Now()
				r := w.call(b, name+"."+system.Namespace+"."+system.InternalDomain, "GET", "/healthz", nil, "")
				total += time.Since(began)
				if r.Status != http.StatusOK {
					b.Fatalf("%s: %d %s", name, r.Status, r.Body)
				}
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/cold-start")
		})
	}
}

// publish posts one ping event with the id to the Broker through the ingress.
func (w *world) publish(b *testing.B, id string) {
	if err := w.Publish(proof.Ping(id)); err != nil {
		b.Error(err)
	}
}

// wait collects the time from "accepted" to "delivered" to the expiration function for n
// benchmark events.
func (f *feed) wait(b *testing.B, n int) []time.Duration {
	accepted := map[string]time.Time{}
	var latencies []time.Duration
	for r := range f.records {
		if len(r.Event.ID) < 6 || r.Event.ID[:6] != "bench-" {
			continue
		}
		switch {
		case r.Stage == broker.StageAccepted:
			accepted[r.Event.ID] = r.Time
		case r.Stage == broker.StageDelivered && r.Trigger == "expiration-ping":
			latencies = append(latencies, r.Time.Sub(accepted[r.Event.ID]))
		case r.Stage != broker.StageDelivered:
			b.Fatalf("event %s: %s (%d %s)", r.Event.ID, r.Stage, r.Code, r.Error)
		}
		if len(latencies) == n {
			slices.Sort(latencies)
			return latencies
		}
	}
	b.Fatal("the feed ended")
	return nil
}
