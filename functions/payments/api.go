// api.go: the REST routes: pay for an order, list the caller's payments.
package main

import (
	"net/http"
	"regexp"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

// API serves /api/payments.
type API struct {
	store Store
	payer *Payer
}

func (a *API) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/payments", httpapi.HandlerFunc(a.create))
	mux.Handle("GET /api/payments", httpapi.HandlerFunc(a.list))
}

// paymentMethodID is the shape of a Stripe PaymentMethod id (pm_card_visa in test mode).
var paymentMethodID = regexp.MustCompile(`^pm_[A-Za-z0-9_]{1,200}$`)

type payRequest struct {
	OrderID string `json:"orderId"`
	Token   string `json:"token"`
}

// paymentView is a payment as the API shows it; amount is in cents, as Stripe and the events count.
type paymentView struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	StripeID string `json:"stripeId"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

func view(p Payment) paymentView {
	return paymentView{ID: p.ID.Hex(), OrderID: p.OrderID, StripeID: p.StripeID, Amount: p.Amount, Currency: p.Currency, Status: p.Status}
}

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	user, err := session.Require(r)
	if err != nil {
		return err
	}
	var req payRequest
	if err := httpapi.Decode(w, r, &req); err != nil {
		return err
	}
	var v httpapi.Validation
	v.Check(req.OrderID != "", "orderId", "orderId is required")
	v.Check(req.OrderID == "" || events.IsID(req.OrderID), "orderId", "orderId must be a 24-hex order id")
	v.Check(req.Token != "", "token", "token is required")
	v.Check(req.Token == "" || paymentMethodID.MatchString(req.Token), "token", "token must be a Stripe PaymentMethod id such as pm_card_visa")
	if err := v.Err(); err != nil {
		return err
	}
	orderID, _ := store.ParseID(req.OrderID)
	order, found, err := a.store.order(r.Context(), orderID)
	switch {
	case err != nil:
		return err
	case !found:
		return ErrOrderNotFound
	case order.UserID != user.ID:
		return httpapi.ErrForbidden
	}
	paid, err := a.payer.pay(r.Context(), order, user.ID, req.Token)
	if err != nil {
		return err
	}
	status := http.StatusCreated // captured: the order is complete
	if paid.Status == paymentAuthorized {
		status = http.StatusAccepted // held; orders has not decided yet: GET shows the outcome
	}
	httpapi.WriteJSON(w, status, view(paid))
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	user, err := session.Require(r)
	if err != nil {
		return err
	}
	payments, err := a.store.paymentsOf(r.Context(), user.ID)
	if err != nil {
		return err
	}
	out := make([]paymentView, len(payments))
	for i, p := range payments {
		out[i] = view(p)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
