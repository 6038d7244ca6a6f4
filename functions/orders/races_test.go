// races_test.go: issue 17's races as orders decides them: a payment against the seller's edit
// (tickets confirms or refuses the reservation), against the buyer's cancel and against the
// window's end; an order no card can pay; and what GET says of an order past its window.
package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

// payUntilDecided delivers payment.created as the Broker does: again while orders answers 503
// (the reservation not confirmed yet), for at most 10 s. It returns the last status and reply.
func (h *harness) payUntilDecided(t testing.TB, orderID, paymentID string) (int, *cloudevents.Event) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, reply := h.payUnconfirmed(t, orderID, paymentID)
		if status != http.StatusServiceUnavailable {
			return status, reply
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment.created of order %s still answered 503 after 10 s", orderID)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAPaymentWaitsForTicketsToConfirmTheReservation(t *testing.T) {
	// Arrange: an order tickets has not seen yet.
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	paymentID := newPaymentID()

	// Act and assert: before the confirmation the payment is retried, the order stays created.
	if status, reply := h.payUnconfirmed(t, o.ID, paymentID); status != http.StatusServiceUnavailable || reply != nil {
		t.Fatalf("payment.created before tickets confirmed: %d %v, want 503 (retry)", status, reply)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusCreated {
		t.Fatalf("order %s after an unconfirmed payment, want created", got.Status)
	}
	h.confirm(t, ticketID, o.ID)
	if status, reply := h.payUnconfirmed(t, o.ID, paymentID); status != http.StatusAccepted || reply != nil {
		t.Fatalf("payment.created after the confirmation: %d %v, want 202", status, reply)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusComplete || got.Ticket.Price != 1999 {
		t.Fatalf("order %+v, want complete at the price the buyer saw (19.99)", got)
	}
}

func TestARefusedReservationCancelsTheOrderAndItsPaymentIsRejected(t *testing.T) {
	// Arrange: the seller's edit reached tickets first, so tickets refused the reservation.
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	refused := events.New(events.ReservationRefused{OrderID: o.ID, TicketID: ticketID})

	// Act: delivered twice.
	first, _ := testenv.Send(t, h.URL, refused, false)
	again, _ := testenv.Send(t, h.URL, refused, true)

	// Assert
	if first != http.StatusAccepted || again != http.StatusAccepted {
		t.Fatalf("reservation.refused answered %d then %d, want 202 twice", first, again)
	}
	got := h.get(t, buyer, o.ID)
	if got.Status != StatusCancelled || got.CancelReason != ReasonTicketChanged || got.Version != 1 {
		t.Fatalf("order %+v, want cancelled v1 (ticket-changed)", got)
	}
	if n := len(h.published(events.TypeOrderCancelled, o.ID)); n != 1 {
		t.Fatalf("%d order.cancelled events, want 1", n)
	}
	paymentID := newPaymentID()
	status, reply := h.payUnconfirmed(t, o.ID, paymentID)
	wantRejection(t, status, reply, o.ID, paymentID)
	h.wantReleased(t, ticketID)
}

// TestTheSellersEditAndAPaymentRaceToOneOutcome: the refusal of a reservation (the seller's edit
// won at tickets) and the buyer's payment arrive at once, 30 rounds: the payment is always
// rejected and the order cancelled, never completed at the old price. Before orders waited for
// tickets' confirmation the payment completed the order at once.
func TestTheSellersEditAndAPaymentRaceToOneOutcome(t *testing.T) {
	h := newHarness(t)
	for round := range 30 {
		buyer, ticketID, o := h.placed(t)
		var wg sync.WaitGroup
		var status int
		var reply *cloudevents.Event
		wg.Go(func() {
			testenv.Send(t, h.URL, events.New(events.ReservationRefused{OrderID: o.ID, TicketID: ticketID}), false)
		})
		wg.Go(func() { status, reply = h.payUntilDecided(t, o.ID, newPaymentID()) })
		testenv.Wait(t, &wg, 5*time.Minute, "the refusal and the payment")

		if status != http.StatusOK || reply == nil || reply.Type() != events.TypePaymentRejected {
			t.Fatalf("round %d: payment answered %d %v, want payment.rejected", round, status, reply)
		}
		if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.CancelReason != ReasonTicketChanged {
			t.Fatalf("round %d: order %+v, want cancelled (ticket-changed)", round, got)
		}
	}
	if n := len(h.published(events.TypeOrderCompleted, "")); n != 0 {
		t.Fatalf("%d orders completed at terms the seller had changed", n)
	}
}

// TestCancelAndPayAtOnceHaveOneOutcome: DELETE and payment.created of one confirmed order at the
// same moment, 40 rounds: either the cancel wins (204, the payment rejected as cancelled, for
// payments to release) or the payment wins (complete, the DELETE refused); never both told done.
func TestCancelAndPayAtOnceHaveOneOutcome(t *testing.T) {
	h := newHarness(t)
	cancelled, paid := 0, 0
	for round := range 40 {
		buyer, ticketID, o := h.placed(t)
		h.confirm(t, ticketID, o.ID)
		var wg sync.WaitGroup
		var del testenv.Response
		var status int
		var reply *cloudevents.Event
		paymentID := newPaymentID()
		wg.Go(func() { del = testenv.Call(t, http.MethodDelete, h.URL+"/api/orders/"+o.ID, nil, buyer.Token) })
		wg.Go(func() { status, reply = h.payUnconfirmed(t, o.ID, paymentID) })
		testenv.Wait(t, &wg, 5*time.Minute, "the cancel and the payment")

		got := h.get(t, buyer, o.ID)
		switch {
		case del.Status == http.StatusNoContent:
			cancelled++
			wantRejection(t, status, reply, o.ID, paymentID)
			if p, _ := events.Decode[events.PaymentRejected](*reply); p.Reason != events.RejectedCancelled {
				t.Fatalf("round %d: rejection reason %q, want cancelled", round, p.Reason)
			}
			if got.Status != StatusCancelled || got.CancelReason != ReasonBuyer {
				t.Fatalf("round %d: DELETE 204 but the order is %+v", round, got)
			}
		case del.Status == http.StatusBadRequest:
			paid++
			if status != http.StatusAccepted || reply != nil || got.Status != StatusComplete {
				t.Fatalf("round %d: DELETE refused, payment %d %v, order %s: want the payment to have completed it", round, status, reply, got.Status)
			}
		default:
			t.Fatalf("round %d: DELETE answered %d %s", round, del.Status, del.Body)
		}
	}
	t.Logf("%d rounds won by the cancel, %d by the payment", cancelled, paid)
}

func TestAPaymentAtTheInstantTheWindowEndsIsRejectedAsExpired(t *testing.T) {
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	h.confirm(t, ticketID, o.ID)
	h.Clock.Advance(window) // exactly expiresAt: no longer payable
	paymentID := newPaymentID()

	status, reply := h.payUnconfirmed(t, o.ID, paymentID)

	wantRejection(t, status, reply, o.ID, paymentID)
	if p, _ := events.Decode[events.PaymentRejected](*reply); p.Reason != events.RejectedExpired {
		t.Fatalf("rejection reason %q, want expired", p.Reason)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.CancelReason != ReasonExpired {
		t.Fatalf("order %+v, want cancelled (expired)", got)
	}
}

func TestAnOrderNoCardCanPayIsCancelledAtOnce(t *testing.T) {
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	refused := events.New(events.PaymentRefused{OrderID: o.ID, PaymentID: newPaymentID(), Reason: "Amount must be no more than $999,999.99"})

	first, _ := testenv.Send(t, h.URL, refused, false)
	again, _ := testenv.Send(t, h.URL, refused, false)

	if first != http.StatusAccepted || again != http.StatusAccepted {
		t.Fatalf("payment.refused answered %d then %d, want 202 twice", first, again)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.CancelReason != ReasonPaymentRefused || got.Version != 1 {
		t.Fatalf("order %+v, want cancelled v1 (payment-refused)", got)
	}
	if n := len(h.published(events.TypeOrderCancelled, o.ID)); n != 1 {
		t.Fatalf("%d order.cancelled events, want 1", n)
	}
	h.wantReleased(t, ticketID) // for sale again now, not at the end of the window
}

func TestGetSaysAnOrderPastItsWindowIsCancelledBeforeTheTick(t *testing.T) {
	h := newHarness(t)
	buyer, _, o := h.placed(t)
	h.Clock.Advance(window)

	got := h.get(t, buyer, o.ID)
	var list []orderJSON
	testenv.Call(t, http.MethodGet, h.URL+"/api/orders", nil, buyer.Token).JSON(t, &list)

	if got.Status != StatusCancelled || got.CancelReason != ReasonExpired {
		t.Fatalf("GET /api/orders/:id %+v, want cancelled (expired), as paying it would say", got)
	}
	if len(list) != 1 || list[0].Status != StatusCancelled || list[0].CancelReason != ReasonExpired {
		t.Fatalf("GET /api/orders %+v, want the order cancelled (expired)", list)
	}
}
