package runtime_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// BenchmarkEventDispatch measures decoding one binary-mode CloudEvent, dispatching it by type,
// validating its payload and writing the reply, in process (no network).
func BenchmarkEventDispatch(b *testing.B) {
	h := runtime.Handler(testenv.Context(b), echoFunction())
	e := events.New(events.ExpirationCompleted{OrderID: orderID})
	ctx := binding.WithForceBinary(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
			b.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
