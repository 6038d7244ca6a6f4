package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestPlacingAnOrderReservesTheTicketAndPublishesOrderCreated(t *testing.T) {
	testenv.OnEachStore(t, testPlacingAnOrderReservesTheTicketAndPublishesOrderCreated)
}

func testPlacingAnOrderReservesTheTicketAndPublishesOrderCreated(t *testing.T) {
	// Arrange
	h := newHarness(t)
	seller, buyer := h.user(t, "seller"), h.user(t, "buyer")
	ticketID := h.ticket(t, seller)

	// Act
	o := h.mustBuy(t, buyer, ticketID)

	// Assert
	wantExpiry := h.Clock.Now().Add(window)
	if o.Status != StatusCreated || o.UserID != buyer.ID || o.Version != 0 || !o.ExpiresAt.Equal(wantExpiry) {
		t.Fatalf("order %+v: want created, user %s, version 0, expiresAt %v", o, buyer.ID, wantExpiry)
	}
	if o.Ticket != (events.OrderTicket{ID: ticketID, Title: "Concert, row 7", Price: 1999}) {
		t.Fatalf("order ticket %+v", o.Ticket)
	}
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != o.ID {
		t.Fatalf("replica reservedBy %v, want %s", got, o.ID)
	}
	pub := h.published(events.TypeOrderCreated, o.ID)
	if len(pub) != 1 {
		t.Fatalf("%d order.created events, want 1", len(pub))
	}
	p, err := events.Decode[events.OrderCreated](pub[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.UserEmail != buyer.Email || p.UserID != buyer.ID || !p.ExpiresAt.Equal(wantExpiry) || p.Ticket != o.Ticket || p.Status != StatusCreated {
		t.Fatalf("order.created payload %+v does not match the order %+v (email %s)", p, o, buyer.Email)
	}
}

func TestPlacingAnOrderRejectsBadRequests(t *testing.T) {
	h := newHarness(t)
	seller, buyer := h.user(t, "seller"), h.user(t, "buyer")
	ticketID := h.ticket(t, seller)
	noEmail, err := h.Sessions.Issue(primitive.NewObjectID().Hex(), "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		field  string
		msg    string
	}{
		{"anonymous", "", map[string]string{"ticketId": ticketID}, 401, "", "Not authorized"},
		{"session without email", noEmail, map[string]string{"ticketId": ticketID}, 401, "", "email"},
		{"malformed id", buyer.Token, map[string]string{"ticketId": "abc"}, 400, "ticketId", "24-hex"},
		{"upper-case id", buyer.Token, map[string]string{"ticketId": "65A1B2C3D4E5F60718293A4B"}, 400, "ticketId", "24-hex"},
		{"missing ticketId", buyer.Token, map[string]string{}, 400, "ticketId", "24-hex"},
		{"ticketId not a string", buyer.Token, `{"ticketId":5}`, 400, "ticketId", "string"},
		{"unknown field", buyer.Token, map[string]string{"ticketId": ticketID, "price": "1"}, 400, "price", "Unknown field"},
		{"not JSON", buyer.Token, `{"ticketId":`, 400, "", "Malformed JSON"},
		{"unknown ticket", buyer.Token, map[string]string{"ticketId": primitive.NewObjectID().Hex()}, 404, "", "Ticket not found"},
		{"own ticket", seller.Token, map[string]string{"ticketId": ticketID}, 400, "ticketId", "own ticket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testenv.Call(t, http.MethodPost, h.URL+"/api/orders", c.body, c.token)
			wantError(t, r, c.status, c.field, c.msg)
		})
	}
	if n := len(h.published(events.TypeOrderCreated, "")); n != 0 || h.replica(t, ticketID).ReservedBy != nil {
		t.Fatalf("a refused request reserved the ticket or published (%d events)", n)
	}
}

func TestAReservedTicketCannotBeOrderedAgain(t *testing.T) {
	testenv.OnEachStore(t, testAReservedTicketCannotBeOrderedAgain)
}

func testAReservedTicketCannotBeOrderedAgain(t *testing.T) {
	// Arrange
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	h.mustBuy(t, h.user(t, "first"), ticketID)

	// Act: one millisecond before the first order expires.
	h.Clock.Advance(window - time.Millisecond)
	r := h.buy(t, h.user(t, "second"), ticketID)

	// Assert
	wantError(t, r, http.StatusBadRequest, "ticketId", "Ticket is already reserved")
}

// client keeps a connection per concurrent buyer alive instead of the default two.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: testenv.RequestTimeout}

// post is a bare POST for many goroutines at once (testenv.Call may only fail the test from
// the test's own goroutine).
func post(url, token string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func TestOfManyConcurrentBuyersExactlyOneGetsTheTicket(t *testing.T) {
	testenv.OnEachAtomicStore(t, testOfManyConcurrentBuyersExactlyOneGetsTheTicket)
}

func testOfManyConcurrentBuyersExactlyOneGetsTheTicket(t *testing.T) {
	// Arrange: 200 different buyers, one ticket.
	const buyers = 200
	h := newHarness(t)
	ticketID := h.ticket(t, h.user(t, "seller"))
	users := make([]testenv.User, buyers)
	for i := range users {
		users[i] = h.user(t, fmt.Sprintf("buyer%d", i))
	}

	// Act: all at once.
	var wg sync.WaitGroup
	statuses := make([]int, buyers)
	bodies := make([][]byte, buyers)
	errs := make([]error, buyers)
	start := make(chan struct{})
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], bodies[i], errs[i] = post(h.URL+"/api/orders", users[i].Token, map[string]string{"ticketId": ticketID})
		}()
	}
	close(start)
	testenv.Wait(t, &wg, 5*time.Minute, "the concurrent orders")

	// Assert: one 201, every other answer a 400 "already reserved", one order in the store.
	var winner orderJSON
	created := 0
	for i := range statuses {
		switch {
		case errs[i] != nil:
			t.Fatalf("buyer %d: %v", i, errs[i])
		case statuses[i] == http.StatusCreated:
			created++
			if err := json.Unmarshal(bodies[i], &winner); err != nil || winner.UserID != users[i].ID {
				t.Fatalf("winner's answer %s (%v)", bodies[i], err)
			}
		case statuses[i] != http.StatusBadRequest || !bytes.Contains(bodies[i], []byte("Ticket is already reserved")):
			t.Fatalf("buyer %d: %d %s, want 201 or 400 already reserved", i, statuses[i], bodies[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d buyers got the ticket, want exactly 1", created)
	}
	if got := h.replica(t, ticketID).ReservedBy; got == nil || got.Hex() != winner.ID {
		t.Fatalf("replica reservedBy %v, want the winner %s", got, winner.ID)
	}
	if n := len(h.published(events.TypeOrderCreated, "")); n != 1 {
		t.Fatalf("%d order.created events, want 1", n)
	}
	coll, err := h.Store.coll(context.Background(), ordersCollection)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := coll.CountDocuments(context.Background(), map[string]any{}); err != nil || n != 1 {
		t.Fatalf("%d orders stored (%v), want 1", n, err)
	}
}

func TestShowingAnOrder(t *testing.T) {
	testenv.OnEachStore(t, testShowingAnOrder)
}

func testShowingAnOrder(t *testing.T) {
	h := newHarness(t)
	buyer, other := h.user(t, "buyer"), h.user(t, "other")
	o := h.mustBuy(t, buyer, h.ticket(t, h.user(t, "seller")))
	url := h.URL + "/api/orders/"

	t.Run("owner sees it", func(t *testing.T) {
		if got := h.get(t, buyer, o.ID); got != o {
			t.Fatalf("GET %+v, want %+v", got, o)
		}
	})
	t.Run("another user is forbidden", func(t *testing.T) {
		wantError(t, testenv.Call(t, http.MethodGet, url+o.ID, nil, other.Token), 403, "", "Forbidden")
	})
	t.Run("anonymous", func(t *testing.T) {
		wantError(t, testenv.Call(t, http.MethodGet, url+o.ID, nil, ""), 401, "", "Not authorized")
	})
	t.Run("malformed id", func(t *testing.T) {
		wantError(t, testenv.Call(t, http.MethodGet, url+"nope", nil, buyer.Token), 400, "id", "24-hex")
	})
	t.Run("unknown id", func(t *testing.T) {
		wantError(t, testenv.Call(t, http.MethodGet, url+primitive.NewObjectID().Hex(), nil, buyer.Token), 404, "", "Order not found")
	})
}

func TestListingShowsTheCallersOrdersNewestFirst(t *testing.T) {
	testenv.OnEachStore(t, testListingShowsTheCallersOrdersNewestFirst)
}

func testListingShowsTheCallersOrdersNewestFirst(t *testing.T) {
	// Arrange
	h := newHarness(t)
	seller, buyer, other := h.user(t, "seller"), h.user(t, "buyer"), h.user(t, "other")
	first := h.mustBuy(t, buyer, h.ticket(t, seller))
	h.Clock.Advance(time.Second)
	second := h.mustBuy(t, buyer, h.ticket(t, seller))
	h.mustBuy(t, other, h.ticket(t, seller))

	// Act
	mine := testenv.Call(t, http.MethodGet, h.URL+"/api/orders", nil, buyer.Token)
	none := testenv.Call(t, http.MethodGet, h.URL+"/api/orders", nil, h.user(t, "newcomer").Token)
	anon := testenv.Call(t, http.MethodGet, h.URL+"/api/orders", nil, "")

	// Assert
	var got []orderJSON
	mine.JSON(t, &got)
	if mine.Status != 200 || len(got) != 2 || got[0] != second || got[1] != first {
		t.Fatalf("GET /api/orders: %d %+v, want [%s %s]", mine.Status, got, second.ID, first.ID)
	}
	if none.Status != 200 || string(bytes.TrimSpace(none.Body)) != "[]" {
		t.Fatalf("a user without orders got %d %s, want 200 []", none.Status, none.Body)
	}
	wantError(t, anon, 401, "", "Not authorized")
}

func TestCancellingAnOrderReleasesTheTicketOnce(t *testing.T) {
	testenv.OnEachStore(t, testCancellingAnOrderReleasesTheTicketOnce)
}

func testCancellingAnOrderReleasesTheTicketOnce(t *testing.T) {
	// Arrange
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	url := h.URL + "/api/orders/" + o.ID

	// Act
	first := testenv.Call(t, http.MethodDelete, url, nil, buyer.Token)
	again := testenv.Call(t, http.MethodDelete, url, nil, buyer.Token)

	// Assert
	if first.Status != http.StatusNoContent || again.Status != http.StatusNoContent {
		t.Fatalf("DELETE answered %d then %d, want 204 twice", first.Status, again.Status)
	}
	if got := h.get(t, buyer, o.ID); got.Status != StatusCancelled || got.Version != 1 {
		t.Fatalf("after DELETE the order is %s v%d, want cancelled v1", got.Status, got.Version)
	}
	pub := h.published(events.TypeOrderCancelled, o.ID)
	if len(pub) != 1 {
		t.Fatalf("%d order.cancelled events, want exactly 1", len(pub))
	}
	if p, err := events.Decode[events.OrderCancelled](pub[0]); err != nil || p.Version != 1 || p.Ticket.ID != ticketID {
		t.Fatalf("order.cancelled %+v (%v)", p, err)
	}
	h.wantReleased(t, ticketID)
}

func TestCancellingIsOwnerOnly(t *testing.T) {
	h := newHarness(t)
	buyer, _, o := h.placed(t)
	url := h.URL + "/api/orders/"

	wantError(t, testenv.Call(t, http.MethodDelete, url+o.ID, nil, h.user(t, "other").Token), 403, "", "Forbidden")
	wantError(t, testenv.Call(t, http.MethodDelete, url+o.ID, nil, ""), 401, "", "Not authorized")
	wantError(t, testenv.Call(t, http.MethodDelete, url+"123", nil, buyer.Token), 400, "id", "24-hex")
	wantError(t, testenv.Call(t, http.MethodDelete, url+primitive.NewObjectID().Hex(), nil, buyer.Token), 404, "", "Order not found")

	if got := h.get(t, buyer, o.ID); got.Status != StatusCreated || len(h.published(events.TypeOrderCancelled, "")) != 0 {
		t.Fatalf("a refused DELETE changed the order: %+v", got)
	}
}

func TestACompleteOrderCannotBeCancelled(t *testing.T) {
	// Arrange
	h := newHarness(t)
	buyer, ticketID, o := h.placed(t)
	if status, reply := h.pay(t, o.ID, newPaymentID()); status != http.StatusAccepted || reply != nil {
		t.Fatalf("payment answered %d %v", status, reply)
	}

	// Act
	r := testenv.Call(t, http.MethodDelete, h.URL+"/api/orders/"+o.ID, nil, buyer.Token)

	// Assert
	wantError(t, r, http.StatusBadRequest, "", "complete order cannot be cancelled")
	if got := h.get(t, buyer, o.ID); got.Status != StatusComplete || got.Version != 1 {
		t.Fatalf("order is %s v%d, want complete v1", got.Status, got.Version)
	}
	if n := len(h.published(events.TypeOrderCancelled, "")); n != 0 || h.replica(t, ticketID).ReservedBy == nil {
		t.Fatalf("the refused cancel published %d events or released the ticket", n)
	}
}
