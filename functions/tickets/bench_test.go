package main

import (
	"fmt"
	"net/http"
	"testing"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/functions/internal/testenv"
)

// BenchmarkCreateTicket: POST /api/tickets end to end (HTTP, validation, insert with the
// outbox entry, publish to a sink, outbox cleared), one client.
func BenchmarkCreateTicket(b *testing.B) {
	e := newEnv(b)
	body := map[string]any{"title": "Concert", "price": 19.99}
	for b.Loop() {
		if r := testenv.Call(b, http.MethodPost, e.url+"/api/tickets", body, e.seller.Token); r.Status != http.StatusCreated {
			b.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tickets/s")
}

// BenchmarkListTickets: GET /api/tickets (first page of 50, and a page deep in the list)
// over 2,000 stored tickets, a quarter of them reserved. lungo scans the collection each time.
func BenchmarkListTickets(b *testing.B) {
	e := newEnv(b)
	ctx := testenv.Context(b)
	coll, err := e.db.Collection(ctx, collection)
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]any, 2000)
	for i := range docs {
		d := document{ID: primitive.NewObjectID(), Title: fmt.Sprint("ticket ", i), Price: 1000, UserID: e.seller.ID, CancelledOrders: []string{}}
		if i%4 == 0 {
			d.OrderID = newID()
		}
		docs[i] = d
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		b.Fatal(err)
	}
	middle := docs[1000].(document).ID.Hex()
	for name, q := range map[string]string{"first_page": "", "middle_page": "?limit=50&after=" + middle} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if r := testenv.Call(b, http.MethodGet, e.url+"/api/tickets"+q, nil, ""); r.Status != http.StatusOK {
					b.Fatalf("status %d: %s", r.Status, r.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lists/s")
		})
	}
}
