package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/system"
)

func TestOnlyWarningsAndErrorsOfFunctionsShowWithoutVerbose(t *testing.T) {
	var out bytes.Buffer
	p := problems{&out}
	for _, line := range []string{
		`[orders] {"level":"info","msg":"request"}` + "\n",
		`[orders] {"level":"warn","msg":"event failed, the Broker will retry"}` + "\n",
		`[stripe-mock] Request: GET /v1/charges` + "\n",
		`[auth] {"level":"error","msg":"panic"}` + "\n",
	} {
		if _, err := p.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, "will retry") || !strings.Contains(got, "panic") {
		t.Fatalf("passed on:\n%s", got)
	}
}

func TestARecordReadsAsOneLine(t *testing.T) {
	r := broker.Record{
		Time: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), Stage: broker.StageRetry,
		Event:   broker.EventSummary{ID: "e1", Type: "dev.tickit.order.created", Subject: "o1"},
		Trigger: "tickets-order-created", Code: 503, Attempt: 2, Duration: 12 * time.Millisecond,
	}
	got := formatRecord(r, false)
	for _, want := range []string{"retry", "dev.tickit.order.created", "id=e1", "subject=o1", "trigger=tickets-order-created", "status=503", "attempt=2", "took=12ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestTheSubscribersAnswerIsDecodedAndShortened(t *testing.T) {
	long := strings.Repeat("x", 100)
	if got := answer(base64.StdEncoding.EncodeToString([]byte("bad\n  event"))); got != "bad event" {
		t.Errorf("answer = %q", got)
	}
	if got := answer(base64.StdEncoding.EncodeToString([]byte(long))); got != long[:60]+"..." {
		t.Errorf("answer = %q", got)
	}
	if got := answer("%%%"); got != "" {
		t.Errorf("answer of non-base64 = %q", got)
	}
}

func TestTheAddressIsADDRElseMakeRunsFileElseTheDefault(t *testing.T) {
	data := t.TempDir()
	t.Setenv("DATA", data)
	t.Setenv("ADDR", "")
	if addr, from := address(); addr != DefaultAddr || from != "the default" {
		t.Fatalf("without ADDR or a running make run: %s from %s", addr, from)
	}
	if err := os.WriteFile(addressFile(data), []byte("127.0.0.1:18084\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if addr, from := address(); addr != "127.0.0.1:18084" || !strings.Contains(from, addressFile(data)) {
		t.Fatalf("with make run's file: %s from %s", addr, from)
	}
	t.Setenv("ADDR", "127.0.0.1:9999")
	if addr, from := address(); addr != "127.0.0.1:9999" || from != "ADDR" {
		t.Fatalf("with ADDR: %s from %s", addr, from)
	}
}

func TestAnUnreachableAddressIsNamedWithWhereItCameFrom(t *testing.T) {
	// Arrange: make run wrote an address nothing listens on any more.
	data := t.TempDir()
	t.Setenv("DATA", data)
	t.Setenv("ADDR", "")
	closed := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	if err := os.WriteFile(addressFile(data), []byte(addr), 0o644); err != nil {
		t.Fatal(err)
	}

	// Act
	err := deadLetters(nil)

	// Assert
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), addressFile(data)) || strings.Contains(err.Error(), DefaultAddr) {
		t.Fatalf("error %v, want it to name %s and %s, not the default", err, addr, addressFile(data))
	}
}

// ingress stands in for make run's ingress: it records what reaches the Broker and feeds
// back an accepted and a delivered record for each event, on the Broker's feed.
func ingress(t *testing.T) (posted chan cloudevents.Event) {
	t.Helper()
	posted = make(chan cloudevents.Event, 1)
	got := make(chan cloudevents.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != system.BrokerHost {
			t.Errorf("Host %q, want the Broker's", r.Host)
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == brokerPath():
			e, err := cloudevents.NewEventFromHTTPRequest(r)
			if err != nil {
				t.Errorf("not a CloudEvent: %v", err)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			posted <- *e
			got <- *e
		case r.Method == http.MethodGet && r.URL.Path == brokerPath()+"/events":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case e := <-got:
				enc := json.NewEncoder(w)
				_ = enc.Encode(broker.Record{Seq: 1, Stage: broker.StageAccepted, Event: broker.EventSummary{ID: e.ID(), Type: e.Type()}})
				_ = enc.Encode(broker.Record{Seq: 2, Stage: broker.StageDelivered, Event: broker.EventSummary{ID: e.ID(), Type: e.Type()}, Trigger: "orders-ticket-created", Code: 200})
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
			}
			<-r.Context().Done()
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("ADDR", strings.TrimPrefix(srv.URL, "http://"))
	return posted
}

func TestSendTakesTheTypesExampleFileAndIgnoresDATA(t *testing.T) {
	// Arrange: DATA names make run's data folder, as it does when exported for make run.
	root, err := system.Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	t.Setenv("DATA", t.TempDir())
	posted := ingress(t)

	// Act
	err = send([]string{"-type", "dev.tickit.ticket.created", "-watch", "0"})

	// Assert: the event carries events/testdata/<type>.json.
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(root, "events/testdata/dev.tickit.ticket.created.json"))
	select {
	case e := <-posted:
		if e.Type() != "dev.tickit.ticket.created" || !bytes.Equal(bytes.TrimSpace(e.Data()), bytes.TrimSpace(want)) {
			t.Fatalf("posted %s with %s, want the fixture %s", e.Type(), e.Data(), want)
		}
	default:
		t.Fatal("nothing reached the Broker")
	}
}

func TestMakeSendHasNoDATAAndMakeEventsPassesItsFilters(t *testing.T) {
	root, err := system.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "TYPE=dev.tickit.ticket.created", "DATA=.tickit"}, "tickit-local send -type 'dev.tickit.ticket.created'\n"},
		{[]string{"send", "TYPE=t", "FILE=f.json", "TO=orders"}, "tickit-local send -type 't' -file 'f.json' -to 'orders'\n"},
		{[]string{"events"}, "tickit-local events\n"},
		{[]string{"events", "TYPE=dev.tickit.order", "ID=e1", "PING=1", "SHOW=data"}, "tickit-local events -type 'dev.tickit.order' -id 'e1' -ping -data\n"},
	} {
		cmd := exec.Command("make", append([]string{"-s", "-n", "-C", root}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), c.want) {
			t.Errorf("make -n %s printed %q (%v), want it to end with %q", strings.Join(c.args, " "), out, err, c.want)
		}
	}
}

func TestSendShowsWhatTheBrokerDidWithTheEvent(t *testing.T) {
	// Arrange
	root, err := system.Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	ingress(t)
	out := captureStdout(t)

	// Act: the watch ends with its deadline (a bound, not a timing asserted).
	err = send([]string{"-type", "dev.tickit.ticket.created", "-watch", "2s"})

	// Assert
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := out(); !strings.Contains(got, "accepted") || !strings.Contains(got, "trigger=orders-ticket-created status=200") {
		t.Fatalf("send printed:\n%s\nwant the accepted and delivered records", got)
	}
}

// captureStdout redirects os.Stdout for the test; the function returns what was written.
func captureStdout(t *testing.T) func() string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&buf, r); close(done) }()
	t.Cleanup(func() { os.Stdout = old })
	return func() string {
		os.Stdout = old
		w.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("stdout copy did not end within 10 s")
		}
		return buf.String()
	}
}

func TestEventsHidesThePingAndFiltersByTypeAndID(t *testing.T) {
	ping := broker.Record{Event: broker.EventSummary{ID: "p1", Type: PingType}}
	order := broker.Record{Event: broker.EventSummary{ID: "o1", Type: "dev.tickit.order.created"}}
	paid := broker.Record{Event: broker.EventSummary{ID: "p2", Type: "dev.tickit.payment.created"}}
	for _, c := range []struct {
		name string
		f    filter
		want []string // ids kept
	}{
		{"default: all but the ping", filter{}, []string{"o1", "p2"}},
		{"PING=1", filter{ping: true}, []string{"p1", "o1", "p2"}},
		{"TYPE=dev.tickit.order", filter{types: []string{"dev.tickit.order"}}, []string{"o1"}},
		{"TYPE=dev.knative", filter{types: []string{"dev.knative"}}, []string{"p1"}},
		{"TYPE=a,b", filter{types: []string{"dev.tickit.order", "dev.tickit.payment"}}, []string{"o1", "p2"}},
		{"ID=p2", filter{id: "p2"}, []string{"p2"}},
	} {
		var kept []string
		for _, r := range []broker.Record{ping, order, paid} {
			if c.f.keeps(r) {
				kept = append(kept, r.Event.ID)
			}
		}
		if strings.Join(kept, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s kept %v, want %v", c.name, kept, c.want)
		}
	}
}

func TestSHOWDataPrintsAnAcceptedEventsDataIndented(t *testing.T) {
	r := broker.Record{Stage: broker.StageAccepted, Event: broker.EventSummary{ID: "e1", Type: "dev.tickit.ticket.created"},
		Data: []byte(`{"id":"t1","price":19.99}`)}
	if got := formatRecord(r, false); strings.Contains(got, "t1") {
		t.Errorf("without SHOW=data the data shows: %q", got)
	}
	got := formatRecord(r, true)
	if !strings.Contains(got, "\n    {\n      \"id\": \"t1\",\n      \"price\": 19.99\n    }") {
		t.Errorf("with SHOW=data: %q", got)
	}
}
