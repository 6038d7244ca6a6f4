// Command tickets is tickit's tickets function: sellers list and edit tickets over REST, and
// order events reserve, release and sell them. Every change publishes its ticket event
// through the outbox. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"knative.dev/pkg/logging"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/outbox"
	"github.com/tickit/tickit/functions/internal/publish"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/session"
	"github.com/tickit/tickit/functions/internal/store"
)

const name = "tickets"

func main() {
	env := &config.Env{}
	mongoURL := env.String("MONGO_URL", store.DefaultURL)
	jwtKey := env.Required("JWT_KEY")
	sink := env.Required("K_SINK")
	env.Check()

	pub, err := publish.New(sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runtime.Serve(New(Config{
		DB:        store.New(mongoURL, name, setup),
		Publisher: pub,
		// tickets only verifies tokens: their lifetime and the cookie are auth's business.
		Sessions: session.New(jwtKey, 24*time.Hour, false),
	}))
}

// Config is what the function is built from; main and the tests both go through New.
type Config struct {
	DB        *store.DB // opened with setup
	Publisher outbox.Publisher
	Sessions  *session.Manager
	Now       func() time.Time // the clock order expiry is judged by; nil is time.Now
}

// New builds the tickets function.
func New(cfg Config) runtime.Function {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	box := outbox.New(cfg.Publisher, cfg.DB, collection)
	t := tickets{db: cfg.DB, box: box}
	return runtime.Function{
		Name:     name,
		Routes:   api{tickets: t}.routes,
		Events:   orderEvents{tickets: t, now: now}.handlers(),
		Sessions: cfg.Sessions,
		Background: func(ctx context.Context) {
			if _, err := box.Flush(ctx); err != nil {
				logging.FromContext(ctx).Warnw("outbox flush failed; the next one tries again", "error", err)
			}
		},
	}
}
