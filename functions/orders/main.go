// Command orders is tickit's orders function: buyers reserve a ticket for a limited time
// (EXPIRATION_WINDOW), cancel it or pay for it. It keeps a replica of the tickets from
// ticket.created/updated, reserves with one atomic compare-and-set on that replica (no
// oversell), and publishes order.created/cancelled/completed through an outbox. See README.md.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/publish"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

func main() {
	var env config.Env
	mongoURL := env.String("MONGO_URL", store.DefaultURL)
	jwtKey := env.Required("JWT_KEY")
	sink := env.Required("K_SINK")
	window := env.Duration("EXPIRATION_WINDOW", 15*time.Minute)
	env.Check()

	pub, err := publish.New(sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runtime.Serve(New(Config{
		DB:        store.New(mongoURL, "orders", setup),
		Publisher: pub,
		// orders only verifies tokens (auth issues them), so the lifetime and the cookie's
		// Secure flag play no part here.
		Sessions: session.New(jwtKey, 0, false),
		Window:   window,
	}))
}
