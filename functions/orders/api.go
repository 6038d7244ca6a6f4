// api.go: the REST API under /api/orders: decode, check, call the flows, encode.
package main

import (
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

func (s *service) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/orders", httpapi.HandlerFunc(s.createOrder))
	mux.Handle("GET /api/orders", httpapi.HandlerFunc(s.listOrders))
	mux.Handle("GET /api/orders/{id}", httpapi.HandlerFunc(s.showOrder))
	mux.Handle("DELETE /api/orders/{id}", httpapi.HandlerFunc(s.deleteOrder))
}

// orderJSON is an order as the API shows it.
type orderJSON struct {
	ID        string             `json:"id"`
	Status    string             `json:"status"`
	UserID    string             `json:"userId"`
	ExpiresAt time.Time          `json:"expiresAt"`
	Version   int64              `json:"version"`
	Ticket    events.OrderTicket `json:"ticket"`
	PaymentID string             `json:"paymentId,omitempty"`
	// CancelReason: why a cancelled order was cancelled (buyer, expired, ticket-changed,
	// payment-refused).
	CancelReason string `json:"cancelReason,omitempty"`
}

// view is the order as it is true at now (Order.Shown): one past its window reads cancelled
// (expired) before the expiration event makes it official, as paying it would say.
func view(o Order, now time.Time) orderJSON {
	o = o.Shown(now)
	return orderJSON{ID: o.ID.Hex(), Status: o.Status, UserID: o.UserID, ExpiresAt: o.ExpiresAt,
		Version: o.Version, Ticket: o.Ticket, PaymentID: o.PaymentID, CancelReason: o.CancelReason}
}

// signedIn returns the caller, who must carry an email: order.created tells it to payments
// and emails.
func signedIn(r *http.Request) (session.User, error) {
	u, err := session.Require(r)
	if err == nil && u.Email == "" {
		err = ErrNoEmail
	}
	return u, err
}

func (s *service) createOrder(w http.ResponseWriter, r *http.Request) error {
	buyer, err := signedIn(r)
	if err != nil {
		return err
	}
	var req struct {
		TicketID string `json:"ticketId"`
	}
	if err := httpapi.Decode(w, r, &req); err != nil {
		return err
	}
	ticketID, ok := store.ParseID(req.TicketID)
	if !ok {
		return ErrTicketID
	}
	o, err := s.place(r.Context(), buyer, ticketID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, view(o, s.clock()))
	return nil
}

func (s *service) listOrders(w http.ResponseWriter, r *http.Request) error {
	buyer, err := session.Require(r)
	if err != nil {
		return err
	}
	orders, err := s.store.ordersOf(r.Context(), buyer.ID)
	if err != nil {
		return err
	}
	now := s.clock()
	out := make([]orderJSON, len(orders))
	for i, o := range orders {
		out[i] = view(o, now)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *service) showOrder(w http.ResponseWriter, r *http.Request) error {
	buyer, id, err := orderRequest(r)
	if err != nil {
		return err
	}
	o, err := s.ownOrder(r.Context(), buyer, id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(o, s.clock()))
	return nil
}

func (s *service) deleteOrder(w http.ResponseWriter, r *http.Request) error {
	buyer, id, err := orderRequest(r)
	if err != nil {
		return err
	}
	if err := s.cancelByBuyer(r.Context(), buyer, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// orderRequest reads the caller and the order id of /api/orders/{id}: 401 before 400.
func orderRequest(r *http.Request) (session.User, primitive.ObjectID, error) {
	buyer, err := session.Require(r)
	if err != nil {
		return buyer, primitive.NilObjectID, err
	}
	id, ok := store.ParseID(r.PathValue("id"))
	if !ok {
		return buyer, id, ErrOrderID
	}
	return buyer, id, nil
}
