package broker_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// BenchmarkBrokerToSubscriber measures events per second from the ingress (16 concurrent
// publishers over HTTP) to a subscriber, and the latency from posting an event to the
// subscriber's handler receiving it.
func BenchmarkBrokerToSubscriber(b *testing.B) {
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var latencies []time.Duration
	done := make(chan struct{}, 1024)
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		id := r.Header.Get("ce-id")
		mu.Lock()
		latencies = append(latencies, at.Sub(sent[id]))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		done <- struct{}{}
	}))
	defer sub.Close()
	w := start(b, startNATS(b, b.TempDir()), 0, trigger("bench", sub.URL))

	b.ResetTimer()
	start := time.Now()
	ids := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				e := event(fmt.Sprintf("bench-%d", i), "dev.tickit.bench")
				req, _ := http.NewRequest(http.MethodPost, w.ingress, nil)
				_ = cehttp.WriteRequest(b.Context(), binding.ToMessage(&e), req)
				mu.Lock()
				sent[e.ID()] = time.Now()
				mu.Unlock()
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					b.Errorf("publish: %v %v", err, resp)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	go func() {
		for i := range b.N {
			ids <- i
		}
		close(ids)
	}()
	for i := range b.N {
		select {
		case <-done:
		case <-time.After(waitFor):
			b.Fatalf("%d of %d events reached the subscriber; none more within %v", i, b.N, waitFor)
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	b.StopTimer()

	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
