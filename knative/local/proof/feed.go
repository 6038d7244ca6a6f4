package proof

import (
	"bufio"
	"encoding/json"
	"net/http"
	"time"

	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/system"
)

// Follow reads the Broker's records (make events) through the ingress until stop.
func (w *World) Follow() (<-chan broker.Record, func(), error) {
	req, err := http.NewRequest(http.MethodGet, w.URL()+"/"+system.Namespace+"/default/events", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Host = system.BrokerHost
	// No overall timeout (the feed is a stream), but a Broker that never answers fails the call.
	resp, err := (&http.Client{Transport: &http.Transport{ResponseHeaderTimeout: time.Minute}}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	records := make(chan broker.Record, 1<<16)
	go func() {
		defer close(records)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r broker.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				records <- r
			}
		}
	}()
	return records, func() { resp.Body.Close() }, nil
}

// DeadLetters lists the Broker's dead letters (make dlq).
func (w *World) DeadLetters() ([]broker.DeadLetter, error) {
	r, err := w.Call(system.BrokerHost, "GET", "/"+system.Namespace+"/default/deadletters", nil, "")
	if err != nil {
		return nil, err
	}
	var dl []broker.DeadLetter
	return dl, r.Decode(&dl)
}
