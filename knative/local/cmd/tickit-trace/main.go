// Command tickit-trace prints the traces of one order from Jaeger's query API as indented trees
// of spans with their durations (make trace ORDER=<order id>, with make run up under TRACE=1):
// the reservation, the payment and whatever else the order went through, oldest first.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/traces"
)

func main() {
	order := flag.String("order", os.Getenv("ORDER"), "the order id (ORDER)")
	ui := os.Getenv("JAEGER_UI")
	if ui == "" {
		ui = backing.JaegerUI
	}
	jaeger := flag.String("jaeger", "http://"+ui, "Jaeger's query API (JAEGER_UI)")
	flag.Parse()
	if *order == "" {
		fmt.Fprintln(os.Stderr, "usage: make trace ORDER=<order id>  (make run must be up with TRACE=1)")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := traces.Find(ctx, *jaeger, "tickit.order.id", *order)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(found) == 0 {
		fmt.Fprintf(os.Stderr, "no trace names order %s in %s (spans reach Jaeger within a second; is it the right order id?)\n", *order, *jaeger)
		os.Exit(1)
	}
	for i, t := range found {
		if i > 0 {
			fmt.Println()
		}
		traces.Print(os.Stdout, t)
	}
	fmt.Printf("\nin the UI: %s/trace/%s\n", *jaeger, found[len(found)-1].ID)
}
