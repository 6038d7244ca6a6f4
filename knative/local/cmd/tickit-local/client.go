package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/tickit/tickit/knative/local/broker"
	"github.com/tickit/tickit/knative/local/system"
)

// These commands reach the running runtime through its ingress, with cluster host names.

func brokerPath() string { return "/" + system.Namespace + "/default" }

// DefaultAddr is where make run listens unless ADDR says otherwise.
const DefaultAddr = "127.0.0.1:8080"

// addressFile is where make run writes the address it listens on, in its data folder, so
// that make send/events/dlq/replay find a make run started with another ADDR.
func addressFile(data string) string { return filepath.Join(data, "address") }

// address is where make run listens, and where that was learnt (for error hints): ADDR, else
// the address the running make run wrote in its data folder (DATA, default .tickit), else
// the default.
func address() (addr, from string) {
	if v := os.Getenv("ADDR"); v != "" {
		return v, "ADDR"
	}
	file := addressFile(env("DATA", ".tickit"))
	if b, err := os.ReadFile(file); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), file + " (written by make run)"
	}
	return DefaultAddr, "the default"
}

// requestTimeout bounds every call but following the feed.
const requestTimeout = 30 * time.Second

// call sends a request for a cluster host through the ingress make run listens on; timeout 0
// means none (a stream).
func call(method, host, path string, body io.Reader, header http.Header, timeout time.Duration) (*http.Response, error) {
	addr, from := address()
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%v (is make run running at %s? that address is %s; set ADDR to the address make run printed)", err, addr, from)
	}
	return resp, nil
}

// exampleFile is the data file make send uses for a type when FILE is not given.
func exampleFile(typ string) string { return filepath.Join("events", "testdata", typ+".json") }

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	typ := fs.String("type", "", "the CloudEvent type, e.g. dev.tickit.ticket.created")
	file := fs.String("file", "", "a JSON file with the event's data (default events/testdata/<type>.json)")
	to := fs.String("to", "", "a function name: send straight to it instead of the Broker")
	subject := fs.String("subject", "", "the CloudEvent subject")
	watch := fs.Duration("watch", 2*time.Second, "through the Broker: show what happens to the event for this long (0: don't)")
	_ = fs.Parse(args)
	if *typ == "" {
		return fmt.Errorf("send needs -type (make send TYPE=... [FILE=data.json] [TO=function])")
	}
	if *file == "" {
		*file = exampleFile(*typ)
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("the event's data: %w (make send FILE=<json file>)", err)
	}
	e := cloudevents.NewEvent()
	e.SetID(uuid.NewString())
	e.SetType(*typ)
	e.SetSource("/tickit/make-send")
	e.SetTime(time.Now())
	if *subject != "" {
		e.SetSubject(*subject)
	}
	if err := e.SetData(cloudevents.ApplicationJSON, json.RawMessage(raw)); err != nil {
		return err
	}
	if err := e.Validate(); err != nil {
		return err
	}
	host, path := system.BrokerHost, brokerPath()
	if *to != "" {
		host, path = *to+"."+system.Namespace+"."+system.InternalDomain, "/"
	}
	var steps *feed
	if *to == "" && *watch > 0 {
		// Follow before sending: the first deliveries may come before the answer does.
		if steps, err = follow(); err != nil {
			return err
		}
		defer steps.Close()
	}
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := call(http.MethodPost, host, path, req.Body, req.Header, requestTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s -> http://%s%s: %s\n", e.Type(), e.ID(), host, path, resp.Status)
	if len(bytes.TrimSpace(answer)) > 0 {
		fmt.Printf("%s\n", bytes.TrimSpace(answer))
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("not accepted")
	}
	if steps != nil {
		fmt.Printf("what the Broker did with it in the next %v (make events ID=%s follows it longer):\n", *watch, e.ID())
		steps.show(os.Stdout, filter{id: e.ID(), ping: true}, time.Now().Add(*watch))
	}
	return nil
}

// feed is the Broker's feed, followed over HTTP.
type feed struct {
	body    io.ReadCloser
	records chan broker.Record
}

// follow starts following the Broker's feed: once it returns, no record is missed.
func follow() (*feed, error) {
	resp, err := call(http.MethodGet, system.BrokerHost, brokerPath()+"/events", nil, nil, 0)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("the Broker's feed answered %s", resp.Status)
	}
	f := &feed{body: resp.Body, records: make(chan broker.Record, 1024)}
	go func() {
		defer close(f.records)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			var r broker.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				f.records <- r
			}
		}
	}()
	return f, nil
}

// Close stops following; the reader goroutine ends with the body.
func (f *feed) Close() { f.body.Close() }

// show prints the records f keeps, until the feed ends or, with a non-zero until, that time.
func (f *feed) show(w io.Writer, keep filter, until time.Time) {
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case r, ok := <-f.records:
			if !ok {
				return
			}
			if keep.keeps(r) {
				fmt.Fprintln(w, formatRecord(r, keep.data))
			}
		case <-deadline:
			return
		}
	}
}

// PingType is the PingSource's event type: every TICK, so make events hides it by default.
const PingType = "dev.knative.sources.ping"

// filter says which records make events shows, and how.
type filter struct {
	types []string // type prefixes; none: every type
	id    string   // one event id; "": every event
	ping  bool     // show the PingSource's ticks too (always when a type asks for them)
	data  bool     // show each event's data under its "accepted" record
}

func (f filter) keeps(r broker.Record) bool {
	if f.id != "" && r.Event.ID != f.id {
		return false
	}
	if len(f.types) == 0 {
		return f.ping || r.Event.Type != PingType
	}
	for _, t := range f.types {
		if strings.HasPrefix(r.Event.Type, t) {
			return true
		}
	}
	return false
}

func events(args []string) error {
	fs := flag.NewFlagSet("events", flag.ExitOnError)
	types := fs.String("type", "", "show only these types: comma-separated prefixes, e.g. dev.tickit.order,dev.tickit.payment.created")
	id := fs.String("id", "", "show only the event with this id")
	ping := fs.Bool("ping", false, "show the PingSource's ticks too ("+PingType+", hidden by default)")
	data := fs.Bool("data", false, "show each event's data (JSON) under its accepted record")
	_ = fs.Parse(args)
	keep := filter{id: *id, ping: *ping, data: *data}
	for _, t := range strings.Split(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			keep.types = append(keep.types, t)
		}
	}
	f, err := follow()
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Printf("following events through the Broker%s (Ctrl-C to stop)\n", keep.describe())
	f.show(os.Stdout, keep, time.Time{})
	return fmt.Errorf("the Broker's feed ended (make run stopped?)")
}

// describe says what the filter hides, for the first line of make events.
func (f filter) describe() string {
	var parts []string
	if len(f.types) > 0 {
		parts = append(parts, "of type "+strings.Join(f.types, "*, ")+"*")
	} else if !f.ping {
		parts = append(parts, "but the 1 s ping (PING=1 shows it)")
	}
	if f.id != "" {
		parts = append(parts, "with id "+f.id)
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// formatRecord is one line per record; with data, an accepted record's data follows it,
// indented.
func formatRecord(r broker.Record, data bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-13s %-32s id=%s", r.Time.Format("15:04:05.000"), r.Stage, r.Event.Type, r.Event.ID)
	if r.Event.Subject != "" {
		fmt.Fprintf(&b, " subject=%s", r.Event.Subject)
	}
	if r.Trigger != "" {
		fmt.Fprintf(&b, " trigger=%s", r.Trigger)
	}
	if r.Code != 0 {
		fmt.Fprintf(&b, " status=%d", r.Code)
	}
	if r.Attempt != 0 {
		fmt.Fprintf(&b, " attempt=%d", r.Attempt)
	}
	if r.Duration != 0 {
		fmt.Fprintf(&b, " took=%v", r.Duration.Round(time.Millisecond))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, " error=%q", r.Error)
	}
	if data && len(r.Data) > 0 {
		var indented bytes.Buffer
		if json.Indent(&indented, r.Data, "    ", "  ") == nil {
			fmt.Fprintf(&b, "\n    %s", indented.String())
		}
	}
	return b.String()
}

func deadLetters(_ []string) error {
	resp, err := call(http.MethodGet, system.BrokerHost, brokerPath()+"/deadletters", nil, nil, requestTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Broker answered %s", resp.Status)
	}
	var list []broker.DeadLetter
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Println("no dead letters")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tID\tTYPE\tTRIGGER\tSTATUS\tATTEMPTS\tANSWER")
	for _, dl := range list {
		ext := dl.Event.Extensions()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\t%d\t%s\n", dl.Time.Local().Format("2006-01-02 15:04:05"), dl.Event.ID(), dl.Event.Type(),
			dl.Trigger, ext["knativeerrorcode"], dl.Attempts, answer(fmt.Sprint(ext["knativeerrordata"])))
	}
	_ = w.Flush()
	fmt.Println("\nmake replay ID=<id> delivers one again to its trigger")
	return nil
}

// answer shows the start of the subscriber's answer, which knativeerrordata holds base64-encoded.
func answer(b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) == 0 {
		return ""
	}
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

func replay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	id := fs.String("id", "", "the event id (or dead-letter number) to deliver again")
	_ = fs.Parse(args)
	if *id == "" {
		return fmt.Errorf("replay needs -id (make replay ID=...)")
	}
	resp, err := call(http.MethodPost, system.BrokerHost, brokerPath()+"/deadletters/"+*id+"/replay", nil, nil, requestTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	fmt.Printf("replayed %s: %s\n", *id, bytes.TrimSpace(body))
	return nil
}
