package main

// ticket.go: the ticket and its reservation rules (no HTTP, no database).

import (
	"slices"
	"time"

	"github.com/tickit/tickit/events"
)

// Ticket is a ticket for sale. Orders owns the reservation's truth; the ticket keeps what it
// learnt from order events, enough to decide any order of (repeated) deliveries the same way.
type Ticket struct {
	ID      string
	Title   string
	Price   events.Price
	UserID  string
	Version int64
	// OrderID is the order holding the ticket ("" when free); OrderExpiresAt is when that
	// order's hold ends unless it is paid.
	OrderID        string
	OrderExpiresAt time.Time
	// CancelledOrders are the orders seen cancelled for this ticket: a late or repeated
	// order.created of one of them must never reserve again.
	CancelledOrders []string
	Sold            bool
}

// MaxTitle is the longest title, in characters after trimming. Prices are bounded by what
// Stripe charges (events.MinPrice, events.MaxPrice). The title reaches the buyer's confirmation
// email's subject ("Your ticket: <title>", well under the 998 characters a mail header line
// may hold) and no Stripe field (metadata carries ids only).
const MaxTitle = 200

// noOrder is the OrderID of a free ticket.
const noOrder = ""

// Reserved reports whether an order holds the ticket (sold tickets stay held by the buyer's order).
func (t Ticket) Reserved() bool { return t.OrderID != noOrder }

func (t Ticket) cancelled(orderID string) bool { return slices.Contains(t.CancelledOrders, orderID) }

// Decision is what an order event does to a ticket.
type Decision int

const (
	// Ignore: nothing to change (a duplicate, or an event that no longer applies).
	Ignore Decision = iota
	// Reserve: the order now holds the ticket.
	Reserve
	// Release: the holding order was cancelled; the ticket is free again.
	Release
	// Record: remember the cancelled order, the reservation is not its.
	Record
	// Sell: the order was paid; the ticket is sold to it.
	Sell
	// Wait: another order still holds the ticket; its cancel is on its way (retry later).
	Wait
	// Refuse: the order was placed at a title or price the seller has changed since (the edit
	// reached tickets first and was answered 200): the edit stands, the order is refused.
	Refuse
)

// OnOrderCreated decides order.created of orderID, placed at terms (the title and price the
// buyer saw) and holding until expiresAt, at time now. A reservation is only ever taken at
// the ticket's present terms: tickets is where edits and reservations meet, one version at a
// time, so whichever reaches it first wins (issue 17): an edit after the reservation is
// refused ("Cannot edit a reserved ticket"), a reservation after an edit is refused here.
func (t Ticket) OnOrderCreated(orderID string, terms events.OrderTicket, expiresAt, now time.Time) Decision {
	switch {
	case t.Sold, t.cancelled(orderID), !expiresAt.After(now), t.OrderID == orderID:
		return Ignore
	case t.OrderID == noOrder, t.cancelled(t.OrderID), !t.OrderExpiresAt.After(now):
		// Free, or its holder is dead: orders only hands the ticket on after that.
		if terms.Title != t.Title || terms.Price != t.Price {
			return Refuse
		}
		return Reserve
	}
	return Wait
}

// OnOrderCancelled decides order.cancelled of orderID. A stale cancel (another order holds
// the ticket) only records the order, so that its late order.created cannot reserve.
func (t Ticket) OnOrderCancelled(orderID string) Decision {
	switch {
	case t.Sold, t.cancelled(orderID):
		return Ignore
	case t.OrderID == orderID:
		return Release
	}
	return Record
}

// OnOrderCompleted decides order.completed. The first sale stands: a ticket is
// never sold twice.
func (t Ticket) OnOrderCompleted() Decision {
	if t.Sold {
		return Ignore
	}
	return Sell
}

// Created is the ticket.created event of a new ticket.
func (t Ticket) Created() events.TicketCreated {
	return events.TicketCreated{ID: t.ID, Version: t.Version, Title: t.Title, Price: t.Price, UserID: t.UserID}
}

// Updated is the ticket.updated event of the ticket as it is now.
func (t Ticket) Updated() events.TicketUpdated {
	return events.TicketUpdated{ID: t.ID, Version: t.Version, Title: t.Title, Price: t.Price, UserID: t.UserID, OrderID: t.OrderID}
}
