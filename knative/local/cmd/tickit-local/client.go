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

// call sends a request for a cluster host through the ingress at ADDR.
func call(method, host, path string, body io.Reader, header http.Header) (*http.Response, error) {
	addr := env("ADDR", "127.0.0.1:8080")
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%v (is make run running at %s?)", err, addr)
	}
	return resp, nil
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	typ := fs.String("type", "", "the CloudEvent type, e.g. dev.tickit.order.created")
	data := fs.String("data", "", "a JSON file with the event's data, e.g. events/testdata/dev.tickit.order.created.json")
	to := fs.String("to", "", "a function name: send straight to it instead of the Broker")
	subject := fs.String("subject", "", "the CloudEvent subject")
	_ = fs.Parse(args)
	if *typ == "" || *data == "" {
		return fmt.Errorf("send needs -type and -data (make send TYPE=... DATA=file [TO=function])")
	}
	raw, err := os.ReadFile(*data)
	if err != nil {
		return err
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
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := call(http.MethodPost, host, path, req.Body, req.Header)
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
	return nil
}

func events(_ []string) error {
	resp, err := call(http.MethodGet, system.BrokerHost, brokerPath()+"/events", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Println("following every event through the Broker (Ctrl-C to stop)")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r broker.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		fmt.Println(formatRecord(r))
	}
	return sc.Err()
}

func formatRecord(r broker.Record) string {
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
	return b.String()
}

func deadLetters(_ []string) error {
	resp, err := call(http.MethodGet, system.BrokerHost, brokerPath()+"/deadletters", nil, nil)
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
	resp, err := call(http.MethodPost, system.BrokerHost, brokerPath()+"/deadletters/"+*id+"/replay", nil, nil)
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
