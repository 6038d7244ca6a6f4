package main

import (
	"testing"
	"time"

	"github.com/tickit/tickit/events"
)

func TestReservationRules(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	live, dead := now.Add(time.Minute), now
	free := Ticket{}
	heldByY := Ticket{OrderID: "Y", OrderExpiresAt: live}
	heldByExpiredY := Ticket{OrderID: "Y", OrderExpiresAt: dead}
	heldByCancelledY := Ticket{OrderID: "Y", OrderExpiresAt: live, CancelledOrders: []string{"Y"}}
	heldByX := Ticket{OrderID: "X", OrderExpiresAt: live}
	xCancelled := Ticket{CancelledOrders: []string{"X"}}
	soldToX := Ticket{OrderID: "X", Sold: true}
	soldToY := Ticket{OrderID: "Y", Sold: true}

	created := []struct {
		name   string
		ticket Ticket
		expiry time.Time
		want   Decision
	}{
		{"free ticket, live order: reserve", free, live, Reserve},
		{"free ticket, expired order: ignore", free, dead, Ignore},
		{"already held by X: ignore (duplicate)", heldByX, live, Ignore},
		{"X was cancelled: ignore (late delivery)", xCancelled, live, Ignore},
		{"sold: ignore", soldToY, live, Ignore},
		{"held by live Y: wait for Y's cancel", heldByY, live, Wait},
		{"held by expired Y: take over", heldByExpiredY, live, Reserve},
		{"held by cancelled Y: take over", heldByCancelledY, live, Reserve},
	}
	for _, tc := range created {
		if got := tc.ticket.OnOrderCreated("X", events.OrderTicket{}, tc.expiry, now); got != tc.want {
			t.Errorf("order.created: %s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	// The order's terms (title, price) must be the ticket's: else the seller's edit came first.
	edited := Ticket{Title: "Race", Price: 9900}
	for name, tc := range map[string]struct {
		ticket Ticket
		terms  events.OrderTicket
		want   Decision
	}{
		"same terms: reserve":                {edited, events.OrderTicket{Title: "Race", Price: 9900}, Reserve},
		"price changed since: refuse":        {edited, events.OrderTicket{Title: "Race", Price: 1000}, Refuse},
		"title changed since: refuse":        {edited, events.OrderTicket{Title: "Old", Price: 9900}, Refuse},
		"held by live Y, changed: wait":      {Ticket{Title: "Race", Price: 9900, OrderID: "Y", OrderExpiresAt: live}, events.OrderTicket{Title: "Race", Price: 1000}, Wait},
		"already held by X, changed: ignore": {Ticket{Title: "Race", Price: 9900, OrderID: "X", OrderExpiresAt: live}, events.OrderTicket{Price: 1}, Ignore},
	} {
		if got := tc.ticket.OnOrderCreated("X", tc.terms, live, now); got != tc.want {
			t.Errorf("order.created: %s: got %d, want %d", name, got, tc.want)
		}
	}

	cancelled := []struct {
		name   string
		ticket Ticket
		want   Decision
	}{
		{"held by X: release", heldByX, Release},
		{"held by Y: only record X", heldByY, Record},
		{"free: record X", free, Record},
		{"X already recorded: ignore", xCancelled, Ignore},
		{"sold to X: ignore (complete orders are never cancelled)", soldToX, Ignore},
	}
	for _, tc := range cancelled {
		if got := tc.ticket.OnOrderCancelled("X"); got != tc.want {
			t.Errorf("order.cancelled: %s: got %d, want %d", tc.name, got, tc.want)
		}
	}

	for _, tc := range []struct {
		name   string
		ticket Ticket
		want   Decision
	}{
		{"held by X: sell", heldByX, Sell},
		{"free (created not seen yet): sell", free, Sell},
		{"sold already: ignore", soldToX, Ignore},
	} {
		if got := tc.ticket.OnOrderCompleted(); got != tc.want {
			t.Errorf("order.completed: %s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
