package traces_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/proof"
	"github.com/tickit/tickit/knative/local/system"
	"github.com/tickit/tickit/knative/local/traces"
)

// TestOnePurchaseIsOneTrace runs the system as make run does with TRACE=1 (Jaeger started and
// every function and the Broker pointed at it), buys a ticket through the client's gateway,
// and reads the payment's trace back from Jaeger's query API: one trace from the buyer's
// request through every function, with emails' first delivery refused (503) and retried.
// make trace-e2e runs it (TICKIT_TRACE_E2E=1): the first run builds Jaeger (~3 min).
func TestOnePurchaseIsOneTrace(t *testing.T) {
	if os.Getenv("TICKIT_TRACE_E2E") == "" {
		t.Skip("make trace-e2e runs this (TICKIT_TRACE_E2E=1): it builds and starts Jaeger")
	}
	// Arrange: the system with Jaeger on a free port; emails refuses its first order.completed.
	root, err := system.Root()
	if err != nil {
		t.Fatal(err)
	}
	ui := freeAddr(t)
	var refused atomic.Bool
	refuseOnce := func(function string, h http.Handler) http.Handler {
		if function != "emails" {
			return h
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Ce-Type") == "dev.tickit.order.completed" && refused.CompareAndSwap(false, true) {
				http.Error(w, "refused once by the test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w, err := proof.Start(ctx, proof.Options{
		Root: root, Data: t.TempDir(), BinDir: filepath.Join(root, ".tickit", "trace-e2e-bin"), Tick: time.Second,
		Settings: map[string]string{"TRACE": "1", "JAEGER_UI": ui, "EXPIRATION_WINDOW": "10m"},
		Wrap:     refuseOnce,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Jaeger() != "http://"+ui {
		t.Fatalf("Jaeger at %q, want http://%s", w.Jaeger(), ui)
	}

	// Act: sell, buy and pay, the payment through the client function's gateway.
	seller, err := w.SignUp("seller@example.com")
	must(t, err)
	buyer, err := w.SignUp("buyer@example.com")
	must(t, err)
	tk, err := w.Sell(seller, "Concert", 25)
	must(t, err)
	var order struct{ ID string }
	until(t, "the order created (orders learns of the ticket through the Broker)", func() bool {
		r, err := w.API("orders", "POST", "/api/orders", map[string]string{"ticketId": tk.ID}, buyer)
		must(t, err)
		return r.Status == http.StatusCreated && r.Decode(&order) == nil
	})
	gateway := "localhost" // any host that is not a function's reaches the client function
	until(t, "the payment taken (payments learns of the order through the Broker)", func() bool {
		r, err := w.Call(gateway, "POST", "/api/payments", map[string]string{"orderId": order.ID, "token": "pm_card_visa"}, buyer)
		must(t, err)
		return r.Status == http.StatusCreated
	})
	until(t, "the confirmation email", func() bool { return len(w.Mail.To("buyer@example.com")) == 1 })

	// Assert: the payment's trace, found by the order id, holds every part of the purchase.
	want := []string{"broker", "client", "emails", "expiration", "orders", "payments", "tickets"}
	var pay traces.Trace
	var seen []string
	until(t, "the payment's trace in Jaeger with spans of "+strings.Join(want, ", ")+" and two attempts to emails (traces: %v)", func() bool {
		found, err := traces.Find(ctx, w.Jaeger(), "tickit.order.id", order.ID)
		must(t, err)
		seen = seen[:0]
		for _, tr := range found {
			seen = append(seen, fmt.Sprintf("%s: %v", tr.ID, tr.Services()))
			if tr.Spans[0].Service == "client" && strings.Contains(tr.Spans[0].OperationName, "/api/payments") {
				pay = tr
			}
		}
		return pay.ID != "" && !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(pay.Services(), s) }) &&
			len(attempts(pay, "deliver emails-order-completed")) >= 2
	}, &seen)
	if got := attempts(pay, "deliver emails-order-completed"); !slices.Equal(got, []string{"1:503", "2:202"}) {
		var b strings.Builder
		traces.Print(&b, pay)
		t.Fatalf("emails' deliveries in the trace: %v, want [1:503 2:202]\n%s", got, b.String())
	}
	var b strings.Builder
	traces.Print(&b, pay)
	t.Logf("the payment's trace:\n%s", b.String())
}

// attempts lists the spans named name as "attempt:status".
func attempts(t traces.Trace, name string) []string {
	var out []string
	for _, s := range t.Spans {
		if s.OperationName == name {
			out = append(out, s.Tag("knative.delivery.attempt")+":"+s.Tag("http.response.status_code"))
		}
	}
	slices.Sort(out)
	return out
}

// until waits up to a minute for cond; what may name args (%v), shown when it gives up.
func until(t *testing.T, what string, cond func() bool, args ...any) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after 60 s waiting for "+what, args...)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}
