// Command tickit-proof measures the whole local system (make bench) and runs the fault suite
// against it (make chaos).
//
//	tickit-proof bench   the system table, one metric per line: name value unit (BENCH_SCALE,
//	                     BENCH_PROFILES: a comma list of file, memory, wire, traced; default
//	                     all; traced is memory with Jaeger started and every span exported to
//	                     it, as TRACE=1 make run, so its rows say what tracing on costs)
//	tickit-proof chaos   faults under a buying crowd, then the invariants (CHAOS_BUDGET)
//
// VERBOSE=1 shows the runtime's and the functions' output on stderr.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tickit/tickit/knative/local/proof"
	"github.com/tickit/tickit/knative/local/system"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "bench" && os.Args[1] != "chaos") {
		fmt.Fprintln(os.Stderr, "usage: tickit-proof bench|chaos")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "tickit-proof:", err)
		os.Exit(1)
	}
}

func run(what string) error {
	root, err := system.Root()
	if err != nil {
		return err
	}
	var log io.Writer = io.Discard
	if os.Getenv("VERBOSE") != "" {
		log = os.Stderr
	}
	ctx := context.Background()
	t := proof.NewTable(os.Stdout)
	if what == "bench" {
		scale := 1.0
		if s := os.Getenv("BENCH_SCALE"); s != "" {
			if scale, err = strconv.ParseFloat(s, 64); err != nil || scale <= 0 {
				return fmt.Errorf("BENCH_SCALE=%q: want a positive number", s)
			}
		}
		var only []string
		if s := os.Getenv("BENCH_PROFILES"); s != "" {
			only = strings.Split(s, ",")
		}
		return proof.Bench(ctx, root, scale, only, t, log)
	}
	budget := 3 * time.Minute
	if s := os.Getenv("CHAOS_BUDGET"); s != "" {
		if budget, err = time.ParseDuration(s); err != nil || budget <= 0 {
			return fmt.Errorf("CHAOS_BUDGET=%q: want a duration such as 3m", s)
		}
	}
	return proof.Chaos(ctx, root, budget, t, log)
}
