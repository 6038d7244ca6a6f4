package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"sync"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamConfig is where dead letters are kept: a file-backed stream on the NATS volume (1 GiB,
// of which the Broker's channel may use 512 MiB: config/11-nats-channel.yaml), kept 30 days.
var streamConfig = jetstream.StreamConfig{
	Name:       "DEAD_LETTERS",
	Subjects:   []string{subject},
	Storage:    jetstream.FileStorage,
	MaxAge:     30 * 24 * time.Hour,
	MaxBytes:   128 << 20,
	Discard:    jetstream.DiscardOld,
	Duplicates: 2 * time.Minute,
}

const subject = "tickit.dead-letters"

// listLimit is how many of the newest dead letters GET / lists.
const listLimit = 1000

// sink receives dead letters over HTTP and keeps them in JetStream.
type sink struct {
	connect func() (jetstream.JetStream, error)
	log     *log.Logger

	mu     sync.Mutex
	stream jetstream.Stream // nil until the first request that reaches NATS
	js     jetstream.JetStream
}

func newSink(connect func() (jetstream.JetStream, error), logger *log.Logger) *sink {
	return &sink{connect: connect, log: logger}
}

// open connects to NATS and makes sure the stream exists, once; a failure is retried on the
// next request.
func (s *sink) open(ctx context.Context) (jetstream.JetStream, jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.js, s.stream, nil
	}
	if s.js == nil {
		js, err := s.connect()
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS: %w", err)
		}
		s.js = js
	}
	st, err := s.js.CreateOrUpdateStream(ctx, streamConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", streamConfig.Name, err)
	}
	s.stream = st
	return s.js, st, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/" && r.Method == http.MethodPost:
		s.receive(w, r)
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		s.list(w, r)
	default:
		writeError(w, http.StatusNotFound, "POST a CloudEvent to /, or GET / to list the dead letters")
	}
}

// receive stores one dead letter: 202 once JetStream holds it, 400 for a request that is not
// a CloudEvent, 503 when NATS cannot take it. The same event sent again within two minutes
// (same id, source and failed destination) is stored once.
func (s *sink) receive(w http.ResponseWriter, r *http.Request) {
	event, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a CloudEvent: "+err.Error())
		return
	}
	data, err := json.Marshal(event)
	if err != nil {
		writeError(w, http.StatusBadRequest, "event: "+err.Error())
		return
	}
	dest, _ := event.Extensions()["knativeerrordest"].(string)
	code := event.Extensions()["knativeerrorcode"]
	js, _, err := s.open(r.Context())
	if err == nil {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, event.ID()+" "+event.Source()+" "+dest)
		_, err = js.PublishMsg(r.Context(), msg)
	}
	if err != nil {
		s.log.Printf("dead letter NOT stored (answered 503): type=%s id=%s: %v", event.Type(), event.ID(), err)
		writeError(w, http.StatusServiceUnavailable, "not stored: "+err.Error())
		return
	}
	s.log.Printf("dead letter: type=%s id=%s source=%s subject=%s knativeerrordest=%s knativeerrorcode=%v",
		event.Type(), event.ID(), event.Source(), event.Subject(), dest, code)
	w.WriteHeader(http.StatusAccepted)
}

// list writes the newest dead letters (listLimit at most), oldest first, one JSON per line.
func (s *sink) list(w http.ResponseWriter, r *http.Request) {
	_, st, err := s.open(r.Context())
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = st.Info(r.Context())
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if last >= listLimit && last-listLimit+1 > first {
		first = last - listLimit + 1
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for seq := first; seq <= last && info.State.Msgs > 0; seq++ {
		msg, err := st.GetMsg(r.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			s.log.Printf("list: message %d: %v", seq, err)
			return
		}
		if _, err := w.Write(append(msg.Data, '\n')); err != nil {
			return
		}
	}
}

// writeError answers in tickit's error format.
func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": message}}})
}
