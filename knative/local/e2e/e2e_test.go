// Package e2e drives the whole system as a user would: over HTTP through the local runtime's
// ingress only, with every function as its own process, the Broker on NATS JetStream,
// redis-server and stripe-mock.
package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tickit/tickit/knative/local/system"
)

// TestTickit runs one system for the user stories; IDLE=2s makes functions scale to zero
// between (and during) them.
func TestTickit(t *testing.T) {
	t.Parallel()
	w := start(t, t.TempDir(), map[string]string{"IDLE": "2s", "EXPIRATION_WINDOW": "10m"})

	t.Run("the whole story: sell, buy, pay, one confirmation email", func(t *testing.T) {
		seller, buyer := w.signUp(t, "seller@example.com"), w.signUp(t, "buyer@example.com")

		tk := w.sell(t, seller, "Concert", 25.5)
		if !w.listed(t, tk.ID) {
			t.Fatal("a new ticket is not listed")
		}

		o := w.buy(t, buyer, tk.ID)
		if o.Status != "created" {
			t.Fatalf("new order status %q", o.Status)
		}
		eventually(t, "the reserved ticket leaves the list", func() bool { return !w.listed(t, tk.ID) })
		r := w.api(t, "tickets", "PUT", "/api/tickets/"+tk.ID, map[string]any{"title": "Changed", "price": 30}, seller)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "reserved") {
			t.Fatalf("the seller edits a reserved ticket: %d %s, want 400", r.Status, r.Body)
		}

		eventually(t, "the payment accepted", func() bool {
			r = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_visa"}, buyer)
			return r.Status != http.StatusNotFound // payments learns of the order through the Broker
		})
		if r.Status != http.StatusCreated {
			t.Fatalf("pay: %d %s", r.Status, r.Body)
		}
		eventually(t, "the order complete", func() bool { return w.order(t, buyer, o.ID).Status == "complete" })
		eventually(t, "the confirmation email", func() bool { return len(w.Mail.To("buyer@example.com")) > 0 })
		if n := len(w.Mail.To("buyer@example.com")); n != 1 {
			t.Fatalf("%d confirmation emails, want 1", n)
		}
		if !strings.Contains(fmt.Sprint(w.Mail.To("buyer@example.com")[0]), "Concert") {
			t.Fatalf("the email does not name the ticket: %v", w.Mail.To("buyer@example.com")[0])
		}
		if w.listed(t, tk.ID) {
			t.Fatal("a sold ticket is listed")
		}
	})

	t.Run("cancel: the ticket is listed again and the order cannot be paid", func(t *testing.T) {
		seller, buyer := w.signUp(t, "seller2@example.com"), w.signUp(t, "buyer2@example.com")
		tk := w.sell(t, seller, "Theatre", 40)
		o := w.buy(t, buyer, tk.ID)
		eventually(t, "the ticket reserved", func() bool { return !w.listed(t, tk.ID) })

		feed := w.follow(t)

		if r := w.api(t, "orders", "DELETE", "/api/orders/"+o.ID, nil, buyer); r.Status != http.StatusNoContent {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}

		eventually(t, "the ticket listed again", func() bool { return w.listed(t, tk.ID) })
		// Payments learns of the cancellation through the Broker; pay once it has.
		feed.delivered(t, "payments-order-cancelled", o.ID)
		r := w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_visa"}, buyer)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("paying a cancelled order: %d %s, want 400", r.Status, r.Body)
		}
		if got := w.order(t, buyer, o.ID).Status; got != "cancelled" {
			t.Fatalf("order status %q, want cancelled", got)
		}
	})

	t.Run("declined cards through the Stripe front: 402 with Stripe's message, the order still payable", func(t *testing.T) {
		seller, buyer := w.signUp(t, "seller4@example.com"), w.signUp(t, "buyer4@example.com")
		tk := w.sell(t, seller, "Ballet", 18.25)
		o := w.buy(t, buyer, tk.ID)

		var r response
		eventually(t, "payments knows the order", func() bool {
			r = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_chargeDeclined"}, buyer)
			return r.Status != http.StatusNotFound
		})
		for _, c := range []struct{ token, message string }{
			{"pm_card_chargeDeclined", "Your card was declined."},
			{"pm_card_visa_chargeDeclinedInsufficientFunds", "Your card has insufficient funds."},
			{"pm_card_threeDSecure2Required", "authentication"},
		} {
			if c.token != "pm_card_chargeDeclined" {
				r = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": c.token}, buyer)
			}
			var body struct{ Errors []struct{ Message string } }
			r.decode(t, &body)
			if r.Status != http.StatusPaymentRequired || len(body.Errors) != 1 || !strings.Contains(body.Errors[0].Message, c.message) {
				t.Fatalf("paying with %s: %d %s, want 402 saying %q", c.token, r.Status, r.Body, c.message)
			}
			if got := w.order(t, buyer, o.ID).Status; got != "created" {
				t.Fatalf("after %s the order is %q, want created", c.token, got)
			}
		}

		if r = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_visa"}, buyer); r.Status != http.StatusCreated {
			t.Fatalf("paying with pm_card_visa after the declines: %d %s, want 201", r.Status, r.Body)
		}
		eventually(t, "the order complete", func() bool { return w.order(t, buyer, o.ID).Status == "complete" })
	})

	t.Run("100 concurrent buyers for one ticket: exactly one order", func(t *testing.T) {
		seller := w.signUp(t, "seller3@example.com")
		tk := w.sell(t, seller, "Final", 99.99)
		buyers := make([]string, 100)
		var wg sync.WaitGroup
		for i := range buyers {
			wg.Add(1)
			go func() { defer wg.Done(); buyers[i] = w.signUp(t, fmt.Sprintf("crowd%d@example.com", i)) }()
		}
		waitFor(t, &wg, "100 sign-ups")
		eventually(t, "orders knows the ticket", func() bool { return w.replicated(t, seller, tk.ID) })

		var created, reserved atomic.Int32
		for _, token := range buyers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := w.api(t, "orders", "POST", "/api/orders", map[string]string{"ticketId": tk.ID}, token)
				switch {
				case r.Status == http.StatusCreated:
					created.Add(1)
				case r.Status == http.StatusBadRequest && strings.Contains(string(r.Body), "already reserved"):
					reserved.Add(1)
				default:
					t.Errorf("a buyer got %d %s", r.Status, r.Body)
				}
			}()
		}
		waitFor(t, &wg, "100 buyers' orders")

		if created.Load() != 1 || reserved.Load() != 99 {
			t.Fatalf("%d orders created and %d told the ticket is reserved, want 1 and 99", created.Load(), reserved.Load())
		}
	})

	t.Run("routing by host like Kourier", func(t *testing.T) {
		cases := []struct {
			host, path string
			want       int
		}{
			{"tickets.tickit." + system.ExternalDomain, "/api/tickets", 200},
			{"tickets.tickit.svc.cluster.local", "/api/tickets", 200},
			{"tickets.tickit.svc", "/api/tickets", 200},
			{"emails.tickit.svc.cluster.local", "/healthz", 200},
			{"emails.tickit." + system.ExternalDomain, "/healthz", 404}, // cluster-local
			{"expiration.tickit." + system.ExternalDomain, "/healthz", 404},
			{"nosuch.tickit." + system.ExternalDomain, "/healthz", 404},
			{"tickets.elsewhere." + system.ExternalDomain, "/api/tickets", 404},
			{"dead-letters.tickit.svc.cluster.local", "/", 503}, // a prebuilt image
			{system.BrokerHost, "/tickit/nosuch", 404},
		}
		// Any other host reaches the client function, when the manifests have one.
		if w.Service("client") != nil {
			cases = append(cases, struct {
				host, path string
				want       int
			}{"localhost", "/healthz", 200}, struct {
				host, path string
				want       int
			}{"127.0.0.1", "/api/tickets", 200}) // the gateway reaches tickets by its cluster name
		} else {
			cases = append(cases, struct {
				host, path string
				want       int
			}{"localhost", "/", 404})
		}
		for _, c := range cases {
			if r := w.call(t, c.host, "GET", c.path, nil, ""); r.Status != c.want {
				t.Errorf("GET http://%s%s: %d %s, want %d", c.host, c.path, r.Status, r.Body, c.want)
			}
		}
	})

	t.Run("scale to zero: an idle function stops and the next request starts it", func(t *testing.T) {
		fn := w.Service("tickets")
		w.api(t, "tickets", "GET", "/api/tickets", nil, "")
		eventually(t, "tickets scaled to zero after IDLE=2s", func() bool { return !fn.Running() })

		if r := w.api(t, "tickets", "GET", "/api/tickets", nil, ""); r.Status != http.StatusOK {
			t.Fatalf("the request after scaling to zero: %d %s", r.Status, r.Body)
		}
		if !strings.Contains(w.output.String(), "scaled to zero") || !strings.Contains(w.output.String(), "cold start") {
			t.Fatal("the runtime logged no scale to zero or cold start")
		}
	})
}

// replicated reports whether orders has its replica of the ticket: the seller may not order
// their own ticket (400), which orders can only say once it knows the ticket (404 before).
func (w *world) replicated(t *testing.T, sellerToken, ticketID string) bool {
	t.Helper()
	r := w.api(t, "orders", "POST", "/api/orders", map[string]string{"ticketId": ticketID}, sellerToken)
	if r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
		t.Fatalf("the seller ordering their own ticket: %d %s", r.Status, r.Body)
	}
	return r.Status == http.StatusBadRequest
}

// TestAnUnpaidOrderExpires runs a system with EXPIRATION_WINDOW=3s and TICK=1s.
func TestAnUnpaidOrderExpires(t *testing.T) {
	t.Parallel()
	w := start(t, t.TempDir(), map[string]string{"EXPIRATION_WINDOW": "3s"})
	seller, buyer := w.signUp(t, "seller@example.com"), w.signUp(t, "buyer@example.com")
	tk := w.sell(t, seller, "Opera", 60)

	o := w.buy(t, buyer, tk.ID)

	eventually(t, "the order cancelled by expiry", func() bool { return w.order(t, buyer, o.ID).Status == "cancelled" })
	eventually(t, "the ticket listed again", func() bool { return w.listed(t, tk.ID) })
}

// TestARestartOnTheSameDataDirKeepsEverything stops the runtime with an order pending and
// starts it again: users, sessions, tickets and orders are there, and the pending expiration
// (kept by redis-server) still cancels the order after the restart.
func TestARestartOnTheSameDataDirKeepsEverything(t *testing.T) {
	t.Parallel()
	// Long enough to outlive the restart even on a busy machine.
	w := start(t, t.TempDir(), map[string]string{"EXPIRATION_WINDOW": "30s"})
	seller, buyer := w.signUp(t, "keeper@example.com"), w.signUp(t, "late@example.com")
	tk := w.sell(t, seller, "Ballet", 70)
	o := w.buy(t, buyer, tk.ID)
	eventually(t, "the ticket reserved", func() bool { return !w.listed(t, tk.ID) })

	w.restart(t)

	if got := w.order(t, buyer, o.ID).Status; got != "created" {
		t.Fatalf("after the restart the order is %q, want still created (the expiry comes later)", got)
	}
	r := w.api(t, "auth", "GET", "/api/users/currentuser", nil, seller)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "keeper@example.com") {
		t.Fatalf("a session from before the restart: %d %s", r.Status, r.Body)
	}
	r = w.api(t, "auth", "POST", "/api/users/signin", map[string]string{"email": "late@example.com", "password": "correct horse battery"}, "")
	if r.Status != http.StatusOK {
		t.Fatalf("sign in after the restart: %d %s", r.Status, r.Body)
	}
	if r = w.api(t, "tickets", "GET", "/api/tickets/"+tk.ID, nil, ""); r.Status != http.StatusOK {
		t.Fatalf("the ticket after the restart: %d %s", r.Status, r.Body)
	}
	eventually(t, "the pending expiration cancels the order", func() bool { return w.order(t, buyer, o.ID).Status == "cancelled" })
	eventually(t, "the ticket listed again", func() bool { return w.listed(t, tk.ID) })
}
