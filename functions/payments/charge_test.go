// charge_test.go: the claim is exclusive in each of its three forms, with 20 racers at once.
package main

import (
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/tickit/tickit/functions/internal/testenv"
)

func TestClaimHasExactlyOneWinner(t *testing.T) {
	testenv.OnEachAtomicStore(t, testClaimHasExactlyOneWinner)
}

func testClaimHasExactlyOneWinner(t *testing.T) {
	h := newHarness(t, newStandIn(t).URL)
	buyer := h.user(t)
	payer := &Payer{store: h.store}
	// Each round starts from one state of the order's payment document (none: the insert
	// race on the unique index; declined and abandoned: the version-checked update race).
	states := map[string]func(orderID string){
		"first attempt": func(string) {},
		"after a decline": func(orderID string) {
			abandon(t, h, orderID, buyer.ID, 0)
			p := h.paymentOf(t, orderID)
			if err := h.store.updatePayment(testenv.Context(t), p, bson.M{"$set": bson.M{"status": paymentDeclined}}); err != nil {
				t.Fatal(err)
			}
		},
		"abandoned": func(orderID string) { abandon(t, h, orderID, buyer.ID, 2*staleAfter) },
	}
	for name, arrange := range states {
		t.Run(name, func(t *testing.T) {
			for round := range 10 {
				orderID := h.order(t, buyer, "10", time.Hour)
				arrange(orderID)
				o, _ := h.replica(t, orderID)

				start := make(chan struct{})
				winners := make(chan primitive.ObjectID, 20)
				var wg sync.WaitGroup
				for range 20 {
					wg.Go(func() {
						<-start
						if p, _, err := payer.claim(testenv.Context(t), o, buyer.ID, pmVisa); err == nil {
							winners <- p.ID
						} else if err != ErrInProgress {
							t.Errorf("a losing claim failed with %v, want ErrInProgress", err)
						}
					})
				}
				close(start)
				testenv.Wait(t, &wg, 5*time.Minute, "the 20 racing claims")
				close(winners)

				if n := len(winners); n != 1 {
					t.Fatalf("round %d: %d claims won, want 1", round, n)
				}
			}
		})
	}
}
