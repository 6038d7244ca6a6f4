// Command ferretdb is the Mongo-wire test server of tickit's tests and of make wire: FerretDB
// (the version pinned in go.mod) with its SQLite backend, embedded from its ferretdb package
// because the module's own command panics at start (it wants build/version/version.txt).
//
// Usage: ferretdb -dir DIR [-listen 127.0.0.1:0]
//
// It serves the MongoDB wire protocol on the address (loopback, a free port by default) and
// keeps one SQLite file per database under DIR. Once it accepts connections it prints one line
// to stdout, "ready mongodb://HOST:PORT/", which is how a caller learns the port. SIGINT or
// SIGTERM stops it; so does its standard input reaching EOF when -stdin is given, which ties it
// to the process that started it (tests leave no server behind even when killed).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address of the wire protocol (port 0: a free one)")
	dir := flag.String("dir", "", "directory of the SQLite files (required)")
	stdin := flag.Bool("stdin", false, "stop when standard input reaches EOF (the parent died)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("ferretdb: -dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatal(err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *stdin {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	}
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	ready := make(chan string, 1)
	go func() { ready <- f.MongoDBURI() }() // blocks until the listener is up
	select {
	case uri := <-ready:
		fmt.Println("ready", uri)
	case <-done:
		log.Fatal("ferretdb: stopped before listening on ", *listen)
	}
	<-done
}
