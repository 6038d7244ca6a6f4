// Command payments charges buyers for their orders with Stripe, exactly once per order, and
// refunds payments that arrive for orders that can no longer be paid. It keeps a replica of the
// orders from order.* events and publishes payment.created. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/publish"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

// stripeRetries is how often stripe-go retries a request that failed on the way (each POST
// carries an idempotency key, so a retry never charges twice).
const stripeRetries = 2

func main() {
	var env config.Env
	mongoURL := env.String("MONGO_URL", store.DefaultURL)
	jwtKey := env.Required("JWT_KEY")
	jwtTTL := env.Duration("JWT_TTL", 24*time.Hour)
	cookieSecure := env.Bool("COOKIE_SECURE", false)
	stripeKey := env.Required("STRIPE_KEY")
	stripeBase := env.String("STRIPE_API_BASE", "")
	sink := env.Required("K_SINK")
	env.Check()

	pub, err := publish.New(sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// stripe-go logs every request at info level: keep its warnings and errors only.
	stripeLog := runtime.NewLogger("payments").Desugar().WithOptions(zap.IncreaseLevel(zap.WarnLevel)).Sugar()
	runtime.Serve(newFunction(
		store.New(mongoURL, "payments", setupDB),
		session.New(jwtKey, jwtTTL, cookieSecure),
		NewStripe(stripeKey, stripeBase, stripeRetries, stripeLog),
		pub,
		productionWaiting,
	))
}

// newFunction wires the payments function; main and the tests both build it here.
// wait is how a payment request waits for orders' decision (productionWaiting).
func newFunction(db *store.DB, sessions *session.Manager, stripe *Stripe, pub outbox.Publisher, wait waiting) runtime.Function {
	st := Store{db: db}
	box := outbox.New(pub, db, paymentsCollection)
	decided := &decisions{}
	payer := &Payer{store: st, stripe: stripe, box: box, wait: wait, decided: decided}
	api := &API{store: st, payer: payer}
	handlers := &Handlers{store: st, stripe: stripe, decided: decided}
	return runtime.Function{
		Name:     "payments",
		Routes:   api.routes,
		Events:   handlers.byType(),
		Sessions: sessions,
		Background: func(ctx context.Context) {
			if _, err := box.Flush(ctx); err != nil {
				logging.FromContext(ctx).Warnw("outbox flush failed", "error", err)
			}
			payer.finishAbandoned(ctx)
		},
	}
}
