// Command emails sends each buyer one confirmation email per completed order, through
// SendGrid, or to the log when no SendGrid key is set. See README.md.
package main

import (
	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/runtime"
	"github.com/tickit/tickit/functions/internal/store"
)

func main() {
	var env config.Env
	mongoURL := env.String("MONGO_URL", store.DefaultURL)
	from := env.String("EMAIL_FROM", "tickets@tickit.dev")
	key := env.String("SENDGRID_API_KEY", "")
	base := env.String("SENDGRID_API_BASE", "")
	timeout := env.Duration("SENDGRID_TIMEOUT", DefaultSendTimeout)
	env.Check()

	var sg *SendGrid
	if key != "" {
		sg = NewSendGrid(key, base, timeout)
	}
	runtime.Serve(New(store.New(mongoURL, "emails", nil), from, sg).Function())
}
