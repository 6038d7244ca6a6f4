// Command expiration ends orders whose reservation time is over: order.created puts the order
// into a Redis sorted set scored by its expiry, each PingSource tick publishes
// expiration.completed for the orders that are due. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/tickit/tickit/functions/internal/config"
	"github.com/tickit/tickit/functions/internal/publish"
	"github.com/tickit/tickit/functions/internal/runtime"
)

func main() {
	var env config.Env
	redisURL := env.Required("REDIS_URL")
	sink := env.Required("K_SINK")
	env.Check()

	// Neither call dials: Redis and the Broker are reached on the first event.
	queue, err := Connect(redisURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	pub, err := publish.New(sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	runtime.Serve(New(queue, pub).Function())
}
