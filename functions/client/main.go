// Command client is tickit's front door: it serves the React web UI and forwards /api/users,
// /api/tickets, /api/orders and /api/payments to the auth, tickets, orders and payments
// functions, so that the browser talks to one origin and keeps one session cookie.
package main

import (
	"fmt"
	"os"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/runtime"
)

func main() {
	var env config.Env
	cfg := Config{
		AuthURL:              env.Required("AUTH_URL"),
		TicketsURL:           env.Required("TICKETS_URL"),
		OrdersURL:            env.Required("ORDERS_URL"),
		PaymentsURL:          env.Required("PAYMENTS_URL"),
		StripePublishableKey: env.String("STRIPE_PUBLISHABLE_KEY", ""),
		UI:                   builtUI(),
	}
	env.Check()
	fn, err := NewFunction(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runtime.Serve(fn)
}
