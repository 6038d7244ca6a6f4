package main

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
)

// The rules of order.go, without HTTP or a database.

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// order is an order tickets has confirmed (Order.Confirmed), as every order is soon after it is placed.
func order(status string, paymentID string) Order {
	return Order{ID: primitive.NewObjectID(), Status: status, ExpiresAt: t0.Add(window), PaymentID: paymentID, Confirmed: true}
}

func unconfirmed(o Order) Order { o.Confirmed = false; return o }

func TestAnOrderExpiresExactlyAtExpiresAt(t *testing.T) {
	cases := []struct {
		name             string
		o                Order
		now              time.Time
		expired, payable bool
	}{
		{"created, before expiry", order(StatusCreated, ""), t0.Add(window - time.Millisecond), false, true},
		{"created, at expiry", order(StatusCreated, ""), t0.Add(window), true, false},
		{"created, after expiry", order(StatusCreated, ""), t0.Add(2 * window), true, false},
		{"complete never expires", order(StatusComplete, "p"), t0.Add(2 * window), false, false},
		{"cancelled is not expired, it is over", order(StatusCancelled, ""), t0.Add(2 * window), false, false},
		{"cancelled is not payable in time either", order(StatusCancelled, ""), t0, false, false},
		{"complete is not payable again", order(StatusComplete, "p"), t0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.o.Expired(c.now); got != c.expired {
				t.Errorf("Expired = %v, want %v", got, c.expired)
			}
			if got := c.o.Payable(c.now); got != c.payable {
				t.Errorf("Payable = %v, want %v", got, c.payable)
			}
		})
	}
}

func TestOnlyACreatedOrderMovesAndOnlyToCancelledOrComplete(t *testing.T) {
	statuses := []string{StatusCreated, StatusCancelled, StatusComplete}
	allowed := map[[2]string]bool{
		{StatusCreated, StatusCancelled}: true,
		{StatusCreated, StatusComplete}:  true,
	}
	for _, from := range statuses {
		for _, to := range statuses {
			if got := order(from, "").CanBecome(to); got != allowed[[2]string{from, to}] {
				t.Errorf("%s -> %s allowed = %v, want %v", from, to, got, !got)
			}
		}
	}
}

func TestWhenATicketIsFreeForANewOrder(t *testing.T) {
	holderID := primitive.NewObjectID()
	held := Ticket{ReservedBy: &holderID, ReservedUntil: t0.Add(window)}
	created, cancelled, complete := order(StatusCreated, ""), order(StatusCancelled, ""), order(StatusComplete, "p")
	cases := []struct {
		name   string
		t      Ticket
		holder *Order
		now    time.Time
		free   bool
	}{
		{"nobody holds it", Ticket{}, nil, t0, true},
		{"a live order holds it", held, &created, t0, false},
		{"its holder expired", held, &created, t0.Add(window), true},
		{"its holder was cancelled", held, &cancelled, t0, true},
		{"its holder paid", held, &complete, t0.Add(10 * window), false},
		{"its holder was never written, still in time", held, nil, t0.Add(window - time.Millisecond), false},
		{"its holder was never written, time is over", held, nil, t0.Add(window), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.t.Free(c.holder, c.now); got != c.free {
				t.Fatalf("Free = %v, want %v", got, c.free)
			}
		})
	}
}

func TestWhatAPaymentDoesToAnOrder(t *testing.T) {
	cases := []struct {
		name string
		o    Order
		now  time.Time
		want PaymentOutcome
	}{
		{"created and in time: complete", order(StatusCreated, ""), t0, Complete},
		{"created but expired: cancel and reject", order(StatusCreated, ""), t0.Add(window), ExpireAndReject},
		{"complete by this payment: repeat", order(StatusComplete, "p1"), t0, AlreadyPaid},
		{"complete by this payment, after expiry: still a repeat", order(StatusComplete, "p1"), t0.Add(2 * window), AlreadyPaid},
		{"complete by another payment: reject", order(StatusComplete, "p0"), t0, Reject},
		{"cancelled: reject", order(StatusCancelled, ""), t0, Reject},
		{"created, in time, not confirmed by tickets: wait", unconfirmed(order(StatusCreated, "")), t0, AwaitConfirmation},
		{"created, expired, not confirmed: cancel and reject", unconfirmed(order(StatusCreated, "")), t0.Add(window), ExpireAndReject},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.o.OnPayment("p1", c.now); got != c.want {
				t.Fatalf("OnPayment = %v, want %v", got, c.want)
			}
		})
	}
}

func TestWhatTheBuyersCancelDoes(t *testing.T) {
	if got, err := order(StatusCreated, "").OnCancel(); err != nil || got != Cancel {
		t.Errorf("created: %v %v, want Cancel", got, err)
	}
	if got, err := order(StatusCancelled, "").OnCancel(); err != nil || got != AlreadyCancelled {
		t.Errorf("cancelled: %v %v, want AlreadyCancelled", got, err)
	}
	if _, err := order(StatusComplete, "p").OnCancel(); !errors.Is(err, ErrCancelComplete) {
		t.Errorf("complete: %v, want ErrCancelComplete", err)
	}
}

func TestAnOrderShowsWhatIsTrue(t *testing.T) {
	o := order(StatusCreated, "")
	if got := o.Shown(t0.Add(window - time.Millisecond)); got.Status != StatusCreated || got.CancelReason != "" {
		t.Errorf("in time: %s %q, want created", got.Status, got.CancelReason)
	}
	if got := o.Shown(t0.Add(window)); got.Status != StatusCancelled || got.CancelReason != ReasonExpired {
		t.Errorf("at expiresAt: %s %q, want cancelled (expired)", got.Status, got.CancelReason)
	}
	if got := order(StatusComplete, "p").Shown(t0.Add(2 * window)); got.Status != StatusComplete {
		t.Errorf("complete, later: %s, want complete", got.Status)
	}
	for o, want := range map[string]string{
		"expired":   order(StatusCreated, "").RejectReason(t0.Add(window)),
		"paid":      order(StatusComplete, "p0").RejectReason(t0),
		"cancelled": order(StatusCancelled, "").RejectReason(t0),
	} {
		wantReason := map[string]string{"expired": events.RejectedExpired, "paid": events.RejectedPaid, "cancelled": events.RejectedCancelled}[o]
		if want != wantReason {
			t.Errorf("%s: reject reason %q, want %q", o, want, wantReason)
		}
	}
}
