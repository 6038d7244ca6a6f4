// races_test.go: issue 17's races through the whole system (the ingress, the Broker, every
// function, stripe-mock behind the Stripe front), as a buyer and a seller would send them:
// every answer a caller gets agrees with what then happens, and a card is charged only for a
// sale that completes, at the price the buyer was shown.
package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/proof"
)

// racesRounds is how often each race is run; each round is a fresh ticket.
const racesRounds = 8

func TestRacesEndWithAnswersThatAgree(t *testing.T) {
	t.Parallel()
	w := start(t, t.TempDir(), map[string]string{"EXPIRATION_WINDOW": "10m"})
	seen := w.deliveries(t)
	seller, buyer := w.signUp(t, "seller@example.com"), w.signUp(t, "buyer@example.com")

	t.Run("a price Stripe cannot charge is refused where it enters", func(t *testing.T) {
		for price, want := range map[float64]int{1000000: http.StatusBadRequest, 0.49: http.StatusBadRequest, 999999.99: http.StatusCreated} {
			r := w.api(t, "tickets", "POST", "/api/tickets", map[string]any{"title": "Limit", "price": price}, seller)
			if r.Status != want {
				t.Errorf("price %v: %d %s, want %d", price, r.Status, r.Body, want)
			}
		}
	})

	t.Run("the seller's edit and an order at the same moment: one winner, told the truth", func(t *testing.T) {
		for round := range racesRounds {
			tk := w.sell(t, seller, "Race", 10)
			seen.wait(t, "orders knows the ticket", "orders-ticket-created", tk.ID)

			var order, edit response
			var wg sync.WaitGroup
			wg.Go(func() {
				order = w.api(t, "orders", "POST", "/api/orders", map[string]string{"ticketId": tk.ID}, buyer)
			})
			wg.Go(func() {
				edit = w.api(t, "tickets", "PUT", "/api/tickets/"+tk.ID, map[string]any{"title": "Race", "price": 99}, seller)
			})
			wg.Wait()

			var o proof.Order
			var paid *proof.Payment
			if order.Status == http.StatusCreated {
				order.decode(t, &o)
				paid = w.payAndSettle(t, buyer, o.ID)
				o = w.order(t, buyer, o.ID)
			}
			final := w.ticket(t, tk.ID)
			t.Logf("round %d: order %d (%s), PUT %d, ticket %v sold=%v", round, order.Status, o.Status, edit.Status, final.Price, final.Sold)
			if edit.Status == http.StatusOK && final.Price != 99 {
				t.Fatalf("round %d: the seller was told 200 at 99, the ticket reads %v", round, final.Price)
			}
			if o.Status == "complete" {
				want := int64(final.Price*100 + 0.5)
				if paid == nil || paid.Amount != want || !final.Sold || final.OrderID != o.ID {
					t.Fatalf("round %d: complete order, payment %+v, ticket %+v: want charged exactly the ticket's price (%d cents) and sold",
						round, paid, final, want)
				}
			} else if paid != nil && paid.Status == "succeeded" {
				t.Fatalf("round %d: order %s %s, but its payment was captured", round, o.ID, o.Status)
			}
		}
	})

	t.Run("cancel and pay at the same moment: one winner, no charge for the loser", func(t *testing.T) {
		for round := range racesRounds {
			tk := w.sell(t, seller, "Cancel race", 20)
			o := w.buy(t, buyer, tk.ID)
			seen.wait(t, "payments knows the order", "payments-order-created", o.ID)
			seen.wait(t, "tickets reserved the ticket", "tickets-order-created", o.ID)

			var del, pay response
			var wg sync.WaitGroup
			wg.Go(func() { del = w.api(t, "orders", "DELETE", "/api/orders/"+o.ID, nil, buyer) })
			wg.Go(func() {
				pay = w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": o.ID, "token": "pm_card_visa"}, buyer)
			})
			wg.Wait()

			paid := w.payAndSettle(t, buyer, o.ID) // a 202 asked again: the outcome
			got := w.order(t, buyer, o.ID)
			t.Logf("round %d: DELETE %d, POST %d, order %s, payment %+v", round, del.Status, pay.Status, got.Status, paid)
			switch {
			case del.Status == http.StatusNoContent:
				if pay.Status == http.StatusCreated || got.Status != "cancelled" || paid != nil && paid.Status != "released" {
					t.Fatalf("round %d: DELETE 204, POST %d %s, order %s, payment %+v: want the payment refused and released",
						round, pay.Status, pay.Body, got.Status, paid)
				}
			case del.Status == http.StatusBadRequest:
				if got.Status != "complete" || paid == nil || paid.Status != "succeeded" {
					t.Fatalf("round %d: DELETE refused, order %s, payment %+v: want it complete and captured", round, got.Status, paid)
				}
			default:
				t.Fatalf("round %d: DELETE answered %d %s", round, del.Status, del.Body)
			}
		}
	})
}

// payAndSettle pays order id (again) until payments answers something other than 404 (it does
// not know the order yet) or 202 (orders has not decided yet), and returns the order's payment
// as GET /api/payments shows it once no longer authorized; nil when it has none.
func (w *world) payAndSettle(t *testing.T, token, orderID string) *proof.Payment {
	t.Helper()
	eventually(t, "payments answers the payment's outcome", func() bool {
		r := w.api(t, "payments", "POST", "/api/payments", map[string]string{"orderId": orderID, "token": "pm_card_visa"}, token)
		return r.Status != http.StatusNotFound && r.Status != http.StatusAccepted
	})
	var found *proof.Payment
	eventually(t, "the payment settled", func() bool {
		r := w.api(t, "payments", "GET", "/api/payments", nil, token)
		var list []proof.Payment
		r.decode(t, &list)
		found = nil
		for _, p := range list {
			if p.OrderID == orderID {
				found = &p
			}
		}
		return found == nil || found.Status != "authorized"
	})
	return found
}

// deliveryLog remembers every (trigger, subject) the Broker delivered, read from its feed, so
// that waits in any order see deliveries that came before them.
type deliveryLog struct {
	mu   sync.Mutex
	cond *sync.Cond
	got  map[[2]string]bool
}

func (w *world) deliveries(t *testing.T) *deliveryLog {
	f := w.follow(t)
	l := &deliveryLog{got: map[[2]string]bool{}}
	l.cond = sync.NewCond(&l.mu)
	go func() {
		for r := range f.records {
			if r.Stage == broker.StageDelivered {
				l.mu.Lock()
				l.got[[2]string{r.Trigger, r.Event.Subject}] = true
				l.cond.Broadcast()
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// wait waits up to 45 s until trigger delivered an event about subject.
func (l *deliveryLog) wait(t *testing.T, what, trigger, subject string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	timer := time.AfterFunc(45*time.Second, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.got[[2]string{trigger, subject}] {
		if time.Now().After(deadline) {
			t.Fatalf("%s: trigger %s delivered nothing about %s within 45 s", what, trigger, subject)
		}
		l.cond.Wait()
	}
}
