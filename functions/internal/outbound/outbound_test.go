package outbound_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/outbound"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestConcurrentCallsToOneHostReuseTheirConnections(t *testing.T) {
	var dialled atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: time.Minute, Transport: outbound.Transport()}

	// 20 callers at once, 10 calls each: one connection each is enough. A connection goes back
	// to the pool a moment after its answer is read, so a caller may dial once more meanwhile;
	// with http.DefaultTransport's 2 idle connections per host it was ~100.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	testenv.Wait(t, &wg, time.Minute, "the callers")

	if n := dialled.Load(); n > 40 {
		t.Fatalf("200 calls from 20 callers opened %d connections, want at most 40 (about one per caller)", n)
	}
}
