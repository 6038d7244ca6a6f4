// Package store opens a function's database from MONGO_URL, on first use: "mongodb://..." is a
// MongoDB server through the official driver; "file:<dir>" (the default) and "memory:" are the
// embedded engine lungo, which speaks the same driver API, so every query is written once.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/256dpi/lungo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/x/mongo/driver/connstring"
	"go.opentelemetry.io/contrib/instrumentation/go.mongodb.org/mongo-driver/mongo/otelmongo"

	"github.com/tickit/tickit/functions/internal/tracing"
)

// DefaultURL is where a function keeps its data when MONGO_URL is unset.
const DefaultURL = "file:.tickit/db"

// Setup prepares a freshly opened database (indexes); it runs once per process.
type Setup func(ctx context.Context, db lungo.IDatabase) error

// DB is one function's database. It connects on first use so that start-up does no I/O, and
// tries again on the next call when connecting failed.
type DB struct {
	url, name string
	setup     Setup

	mu    sync.Mutex
	db    lungo.IDatabase
	close func(context.Context) error
}

// New returns the database for MONGO_URL; name is used when the URL names no database.
func New(url, name string, setup Setup) *DB {
	if url == "" {
		url = DefaultURL
	}
	return &DB{url: url, name: name, setup: setup}
}

// Database returns the open database, opening it on the first call.
func (d *DB) Database(ctx context.Context) (lungo.IDatabase, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db != nil {
		return d.db, nil
	}
	db, closeFn, err := d.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", redact(d.url), err)
	}
	if d.setup != nil {
		if err := d.setup(ctx, db); err != nil {
			_ = closeFn(ctx)
			return nil, fmt.Errorf("store: set up %s: %w", d.name, err)
		}
	}
	d.db, d.close = db, closeFn
	return db, nil
}

// Collection returns a collection of the database, opening the database if needed.
func (d *DB) Collection(ctx context.Context, name string) (lungo.ICollection, error) {
	db, err := d.Database(ctx)
	if err != nil {
		return nil, err
	}
	return db.Collection(name), nil
}

// Close releases the database; a later call opens it again.
func (d *DB) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return nil
	}
	err := d.close(ctx)
	d.db, d.close = nil, nil
	return err
}

func (d *DB) open(ctx context.Context) (lungo.IDatabase, func(context.Context) error, error) {
	switch {
	case strings.HasPrefix(d.url, "mongodb://"), strings.HasPrefix(d.url, "mongodb+srv://"):
		cs, err := connstring.ParseAndValidate(d.url)
		if err != nil {
			return nil, nil, err
		}
		name := d.name
		if cs.Database != "" {
			name = cs.Database
		}
		opts := options.Client().ApplyURI(d.url)
		if tracing.Enabled() { // a span per command, in the trace of the request
			opts.SetMonitor(otelmongo.NewMonitor())
		}
		client, err := lungo.Connect(ctx, opts)
		if err != nil {
			return nil, nil, err
		}
		return client.Database(name), client.Disconnect, nil
	case d.url == "memory:":
		return openEngine(lungo.NewMemoryStore(), d.name)
	case strings.HasPrefix(d.url, "file:"):
		dir := strings.TrimPrefix(d.url, "file:")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		return openEngine(lungo.NewFileStore(filepath.Join(dir, d.name+".bson"), 0o644), d.name)
	}
	return nil, nil, errors.New(`MONGO_URL must start with "mongodb://", "mongodb+srv://", "file:" or be "memory:"`)
}

func openEngine(s lungo.Store, name string) (lungo.IDatabase, func(context.Context) error, error) {
	client, engine, err := lungo.Open(context.Background(), lungo.Options{Store: s})
	if err != nil {
		return nil, nil, err
	}
	return client.Database(name), func(context.Context) error { engine.Close(); return nil }, nil
}

// redact hides a password in a connection URL before it reaches a log line.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at > 0 {
		if scheme := strings.Index(url, "://"); scheme > 0 && scheme < at {
			return url[:scheme+3] + "***" + url[at:]
		}
	}
	return url
}
