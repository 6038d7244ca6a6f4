package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tickit/tickit/knative/local/system"
)

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	verbose := fs.Bool("v", os.Getenv("VERBOSE") != "", "show every log line of the functions, not only warnings and errors (VERBOSE=1)")
	_ = fs.Parse(args)
	root, err := system.Root()
	if err != nil {
		return err
	}
	cfg := system.Config{Root: root, Data: env("DATA", ".tickit"), Addr: env("ADDR", "127.0.0.1:8080"), Out: os.Stdout}
	if cfg.Tick, err = duration("TICK", 0); err != nil {
		return err
	}
	if cfg.Idle, err = duration("IDLE", 0); err != nil {
		return err
	}
	cfg.FunctionOutput = problems{os.Stdout}
	if *verbose {
		cfg.FunctionOutput = os.Stdout
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	sys, err := system.Start(ctx, cfg)
	if err != nil {
		return err
	}
	// make send/events/dlq/replay read it when ADDR is not set: see address.
	addrFile := addressFile(cfg.Data)
	if err := os.WriteFile(addrFile, []byte(sys.Addr()+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "tickit-local: make send/events/dlq/replay will need ADDR:", err)
	}
	fmt.Printf("\ntickit is up: %s (in %v)\n\n", sys.URL(), time.Since(start).Round(10*time.Millisecond))
	fmt.Print(examples(sys.Addr()))
	<-ctx.Done()
	stop()
	fmt.Println("\nstopping (Ctrl-C again to kill)")
	_ = os.Remove(addrFile)
	sys.Close()
	fmt.Println("stopped")
	return nil
}

func examples(addr string) string {
	return fmt.Sprintf(`Try it:
  open http://%[1]s/ in a browser: the web UI (the client function)
  curl -s -X POST -H 'Host: auth.tickit.%[2]s' -H 'Content-Type: application/json' \
       -d '{"email":"me@example.com","password":"secret-password"}' http://%[1]s/api/users/signup
  curl -s -H 'Host: tickets.tickit.%[2]s' http://%[1]s/api/tickets
  make send TYPE=dev.tickit.ticket.created   # events/testdata/<type>.json to the Broker: orders learns of the ticket
  make events     # follow every event through the Broker (TYPE=<prefix>, ID=<id>, PING=1, SHOW=data)
  make dlq        # dead letters; make replay ID=<event id>
These find this address by themselves (%[3]s); elsewhere set ADDR=%[1]s.
Functions' warnings and errors show here; all their logs with VERBOSE=1. Ctrl-C stops everything.
`, addr, system.ExternalDomain, filepath.Join(env("DATA", ".tickit"), "address"))
}

// problems passes on the functions' warnings and errors only; it gets whole lines (each
// function's output goes through proc.Prefix first).
type problems struct{ w io.Writer }

func (p problems) Write(line []byte) (int, error) {
	for _, level := range []string{`"level":"warn"`, `"level":"error"`, `"level":"fatal"`, `"level":"panic"`, `"level":"dpanic"`} {
		if bytes.Contains(line, []byte(level)) {
			return p.w.Write(line)
		}
	}
	return len(line), nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func duration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive Go duration such as 1s", name, v)
	}
	return d, nil
}
