package main

import (
	"net/http/httptest"

	"github.com/tickit/tickit/knative/local/backing"
	"github.com/tickit/tickit/knative/local/broker"
)

// localNamespace is the namespace of knative/local's Broker in the table: its streams live
// in the run's nats-server beside eventing-natss's, under other names.
const localNamespace = "delivery-local"

// localBroker is knative/local's Broker as knative/delivery's scenarios see it, on the
// run's nats-server.
type localBroker struct {
	*broker.TableBroker
	nats *backing.NATS
	srv  *httptest.Server
}

func newLocalBroker(natsURL string) (*localBroker, error) {
	n, err := backing.ConnectNATS(natsURL)
	if err != nil {
		return nil, err
	}
	tb := &broker.TableBroker{JS: n.JS, Namespace: localNamespace}
	srv := httptest.NewServer(tb)
	tb.IngressURL = srv.URL + "/" + localNamespace + "/default"
	return &localBroker{TableBroker: tb, nats: n, srv: srv}, nil
}

func (l *localBroker) close() {
	l.srv.Close()
	l.TableBroker.Close()
	l.nats.Close()
}
