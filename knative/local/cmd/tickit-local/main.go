// Command tickit-local runs tickit on one machine from the manifests under knative/ (make run)
// and talks to it: send a test event, follow events through the Broker, list and replay dead
// letters.
//
//	tickit-local run                                  everything; Ctrl-C stops it
//	tickit-local send -type T [-file F] [-to FN]      a CloudEvent (data: F, default events/testdata/T.json)
//	                                                  to the Broker, or to one function
//	tickit-local events [-type P] [-id ID] [-ping] [-data]
//	                                                  every step of every event (but the ping), as it happens
//	tickit-local dlq                                  the dead letters
//	tickit-local replay -id ID                        deliver a dead letter again
//
// Settings come from the environment: ADDR (127.0.0.1:8080), DATA (the data folder, ./.tickit),
// IDLE (60s), TICK (the PingSource schedule), EXPIRATION_WINDOW, NATS_URL, MONGO_URL, REDIS_URL,
// STRIPE_KEY, JWT_KEY, SENDGRID_API_KEY. run writes its address to DATA/address; the other
// commands use ADDR, else that file, else 127.0.0.1:8080.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = run(args)
	case "send":
		err = send(args)
	case "events":
		err = events(args)
	case "dlq":
		err = deadLetters(args)
	case "replay":
		err = replay(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickit-local:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tickit-local run | send -type T [-file F] [-to FUNCTION] | events [-type P] [-id ID] [-ping] [-data] | dlq | replay -id ID")
	os.Exit(2)
}
