package main

// api.go: the REST API: sell a ticket, list the ones for sale, show one, edit your own.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/events"
	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

// Listing page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Errors the API answers with.
var (
	ErrMalformedID = httpapi.BadRequest("Malformed ticket id", "id")
	ErrReserved    = httpapi.BadRequest("Cannot edit a reserved ticket")
	ErrBadLimit    = httpapi.BadRequest("limit must be a whole number from 1 to 200", "limit")
	ErrBadAfter    = httpapi.BadRequest("after must be a ticket id", "after")
	ErrBusy        = httpapi.NewError(http.StatusConflict, "The ticket is changing right now; try again")
)

type api struct {
	tickets tickets
}

func (a api) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/tickets", httpapi.HandlerFunc(a.create))
	mux.Handle("GET /api/tickets", httpapi.HandlerFunc(a.list))
	mux.Handle("GET /api/tickets/{id}", httpapi.HandlerFunc(a.show))
	mux.Handle("PUT /api/tickets/{id}", httpapi.HandlerFunc(a.update))
}

// ticketJSON is a ticket as the API shows it (orderId while an order holds it).
type ticketJSON struct {
	ID      string       `json:"id"`
	Title   string       `json:"title"`
	Price   events.Price `json:"price"`
	UserID  string       `json:"userId"`
	Version int64        `json:"version"`
	OrderID string       `json:"orderId,omitempty"`
	Sold    bool         `json:"sold,omitempty"`
}

func view(t Ticket) ticketJSON {
	return ticketJSON{ID: t.ID, Title: t.Title, Price: t.Price, UserID: t.UserID, Version: t.Version, OrderID: t.OrderID, Sold: t.Sold}
}

// ticketRequest is the body of POST and PUT. Price stays raw so that its exact decimal text is
// parsed (never through a float) and a wrong type is reported on the field price.
type ticketRequest struct {
	Title *string         `json:"title"`
	Price json.RawMessage `json:"price"`
}

// decodeTicket reads and validates a ticket body: the trimmed title and the price in cents.
func decodeTicket(w http.ResponseWriter, r *http.Request) (string, events.Price, error) {
	var req ticketRequest
	if err := httpapi.Decode(w, r, &req); err != nil {
		return "", 0, err
	}
	var v httpapi.Validation
	title := ""
	if req.Title != nil {
		title = strings.TrimSpace(*req.Title)
	}
	v.Check(title != "", "title", "Title is required")
	v.Check(utf8.RuneCountInString(title) <= MaxTitle, "title", "Title must be at most 200 characters")

	var price events.Price
	switch raw := strings.TrimSpace(string(req.Price)); {
	case raw == "" || raw == "null":
		v.Check(false, "price", "Price is required")
	default:
		p, err := events.ParsePrice(raw)
		switch {
		case err != nil:
			v.Check(false, "price", "Price must be a number with at most 2 decimals")
		case p <= 0:
			v.Check(false, "price", "Price must be greater than 0")
		case p < events.MinPrice:
			v.Check(false, "price", "Price must be at least "+events.MinPrice.String()+": Stripe charges no less")
		case p > events.MaxPrice:
			v.Check(false, "price", "Price must be at most "+events.MaxPrice.String()+": Stripe charges no more")
		}
		price = p
	}
	return title, price, v.Err()
}

// ticketID reads the {id} path segment.
func ticketID(r *http.Request) (primitive.ObjectID, error) {
	id, ok := store.ParseID(r.PathValue("id"))
	if !ok {
		return id, ErrMalformedID
	}
	return id, nil
}

func (a api) create(w http.ResponseWriter, r *http.Request) error {
	user, err := session.Require(r)
	if err != nil {
		return err
	}
	title, price, err := decodeTicket(w, r)
	if err != nil {
		return err
	}
	t, err := a.tickets.create(r.Context(), title, price, user.ID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, view(t))
	return nil
}

func (a api) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return ErrBadLimit
		}
		limit = n
	}
	var after *primitive.ObjectID
	if s := q.Get("after"); s != "" {
		id, ok := store.ParseID(s)
		if !ok {
			return ErrBadAfter
		}
		after = &id
	}
	list, err := a.tickets.listed(r.Context(), after, limit)
	if err != nil {
		return err
	}
	out := make([]ticketJSON, len(list))
	for i, t := range list {
		out[i] = view(t)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a api) show(w http.ResponseWriter, r *http.Request) error {
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	t, err := a.tickets.find(r.Context(), id)
	if err != nil {
		return notFound(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, view(t))
	return nil
}

// update edits the caller's own ticket. The write is version-checked: when an order event or
// another edit lands between the read and the write, the ticket is read and checked again, so
// a reservation made meanwhile is never overwritten.
func (a api) update(w http.ResponseWriter, r *http.Request) error {
	user, err := session.Require(r)
	if err != nil {
		return err
	}
	id, err := ticketID(r)
	if err != nil {
		return err
	}
	title, price, err := decodeTicket(w, r)
	if err != nil {
		return err
	}
	var edited Ticket
	err = a.tickets.decide(r.Context(), id, func(t Ticket) (err error) {
		switch {
		case t.UserID != user.ID:
			return httpapi.ErrForbidden
		case t.Reserved():
			return ErrReserved
		}
		edited, err = a.tickets.edit(r.Context(), t, title, price)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return ErrBusy
	}
	if err != nil {
		return notFound(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, view(edited))
	return nil
}

// notFound maps an unknown ticket to 404 and leaves any other error as it is.
func notFound(err error) error {
	if errors.Is(err, errNoTicket) {
		return httpapi.ErrNotFound
	}
	return err
}
