// Package backing starts the services the functions and the Broker lean on: NATS JetStream,
// Redis, stripe-mock, and the local secret values. Each is embedded or started from PATH,
// with its data under the data dir, unless the user points at a real one.
package backing

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a connection to NATS JetStream, and the embedded server when there is one.
type NATS struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	server *server.Server // nil when connected to NATS_URL
}

// Where says what the connection goes to, for the start-up line.
func (n *NATS) Where() string {
	if n.server != nil {
		return "embedded, store " + n.server.StoreDir()
	}
	return n.Conn.ConnectedUrlRedacted()
}

// StartNATS runs nats-server in this process with its JetStream file store under dir. It
// listens on no port: the runtime talks to it in-process.
func StartNATS(dir string) (*NATS, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "tickit-local",
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: the embedded server did not become ready (store %s)", dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("tickit-local"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("nats: connect in-process: %w", err)
	}
	return newNATS(nc, srv)
}

// ConnectNATS uses the NATS server at url (NATS_URL), which must have JetStream enabled.
func ConnectNATS(url string) (*NATS, error) {
	nc, err := nats.Connect(url, nats.Name("tickit-local"))
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	return newNATS(nc, nil)
}

func newNATS(nc *nats.Conn, srv *server.Server) (*NATS, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
		}
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return &NATS{Conn: nc, JS: js, server: srv}, nil
}

// Close flushes what the connection still holds (acknowledgements go out asynchronously),
// closes it and stops the embedded server, which syncs its store.
func (n *NATS) Close() {
	_ = n.Conn.Flush()
	n.Conn.Close()
	if n.server != nil {
		n.server.Shutdown()
		n.server.WaitForShutdown()
	}
}
