// Command dead-letters is the dead-letter sink of every Trigger in the kind cluster
// (knative/eventing/20-dead-letters.yaml, built by ko). It stores each CloudEvent it receives
// in the JetStream stream DEAD_LETTERS of the cluster's NATS (config/10-nats.yaml: file
// storage on its volume) and answers 202 only once JetStream holds it, so a dead letter
// outlives the pod that received it, its scale to zero, make undeploy and the Broker. When
// NATS cannot take it the answer is 503, never a 2xx for a dead letter it did not store (the
// NATS channel's dispatcher NAKs it rather than acking). Each dead letter is
// also logged on one line; GET / lists the stored ones as JSON lines (structured CloudEvents
// with Knative's knativeerror* extensions), oldest first.
//
// Settings: PORT (8080) and NATS_URL (required). NATS is connected on the first request, so
// the pod is ready in milliseconds. make run does not run it: the local Broker keeps dead
// letters itself (make dlq).
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := os.Getenv("NATS_URL")
	if url == "" {
		fmt.Fprintln(os.Stderr, "dead-letters: NATS_URL is required")
		os.Exit(2)
	}
	logger := log.New(os.Stdout, "", log.LstdFlags|log.LUTC)
	s := newSink(func() (jetstream.JetStream, error) {
		nc, err := nats.Connect(url, nats.Name("dead-letters"))
		if err != nil {
			return nil, err
		}
		return jetstream.New(nc)
	}, logger)
	srv := &http.Server{Addr: ":" + cmp.Or(os.Getenv("PORT"), "8080"), Handler: s, ReadHeaderTimeout: 10 * time.Second}

	// SIGTERM: stop accepting, let the requests in flight finish (10 s at most).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			logger.Printf("shutdown: %v", err)
		}
	}()
	logger.Printf("dead-letters listening on %s, storing in JetStream stream %s at %s", srv.Addr, streamConfig.Name, url)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		logger.Printf("serve: %v", err)
		os.Exit(1)
	}
	<-done
}
