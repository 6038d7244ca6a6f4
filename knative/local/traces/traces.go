// Package traces reads traces back from Jaeger's query API (/api/services, /api/traces) and
// prints one as an indented tree of spans with their durations: what make trace shows, and
// what the tracing e2e asserts on.
package traces

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Span is one span as Jaeger's query API returns it.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64 `json:"startTime"` // µs since the epoch
	Duration  int64 `json:"duration"`  // µs
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
	Service   string `json:"-"` // filled from the trace's processes
}

// Tag returns the value of the span's tag key as text, or "".
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Parent is the span's parent id ("" for a root, or a parent that is not in the trace).
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Trace is one trace: its spans, oldest first.
type Trace struct {
	ID    string
	Spans []Span
}

// Services lists the services of the trace's spans, sorted, each once.
func (t Trace) Services() []string {
	var out []string
	for _, s := range t.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	sort.Strings(out)
	return out
}

// Start and End bound the trace's spans.
func (t Trace) Start() time.Time { return time.UnixMicro(t.Spans[0].StartTime) }

// Duration is from the first span's start to the last span's end.
func (t Trace) Duration() time.Duration {
	end := int64(0)
	for _, s := range t.Spans {
		end = max(end, s.StartTime+s.Duration)
	}
	return time.Duration(end-t.Spans[0].StartTime) * time.Microsecond
}

type response struct {
	Data []struct {
		TraceID   string `json:"traceID"`
		Spans     []Span `json:"spans"`
		Processes map[string]struct {
			Service string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// Find returns the traces holding a span of any service whose tag key is value (e.g.
// tickit.order.id), whole and oldest first; base is Jaeger's query API (http://127.0.0.1:16686).
func Find(ctx context.Context, base, key, value string) ([]Trace, error) {
	var services struct{ Data []string }
	if err := get(ctx, base+"/api/services", &services); err != nil {
		return nil, err
	}
	tags, _ := json.Marshal(map[string]string{key: value})
	seen := map[string]bool{}
	var out []Trace
	for _, svc := range services.Data {
		q := url.Values{"service": {svc}, "tags": {string(tags)}, "limit": {"50"}, "lookback": {"24h"}}
		var r response
		if err := get(ctx, base+"/api/traces?"+q.Encode(), &r); err != nil {
			return nil, err
		}
		for _, id := range ids(r) {
			if seen[id] {
				continue
			}
			seen[id] = true
			t, err := Get(ctx, base, id)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spans[0].StartTime < out[j].Spans[0].StartTime })
	return out, nil
}

// Get returns one whole trace by id.
func Get(ctx context.Context, base, id string) (Trace, error) {
	var r response
	if err := get(ctx, base+"/api/traces/"+id, &r); err != nil {
		return Trace{}, err
	}
	if len(r.Data) == 0 || len(r.Data[0].Spans) == 0 {
		return Trace{}, fmt.Errorf("trace %s: not found", id)
	}
	d := r.Data[0]
	t := Trace{ID: d.TraceID, Spans: d.Spans}
	for i := range t.Spans {
		t.Spans[i].Service = d.Processes[t.Spans[i].ProcessID].Service
	}
	sort.SliceStable(t.Spans, func(i, j int) bool { return t.Spans[i].StartTime < t.Spans[j].StartTime })
	return t, nil
}

func ids(r response) []string {
	var out []string
	for _, d := range r.Data {
		out = append(out, d.TraceID)
	}
	return out
}

func get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("jaeger query API: %w (is make run up with TRACE=1?)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("jaeger query API: GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// shown are the tags printed after a span's name, when it has them.
var shown = []string{"http.response.status_code", "knative.delivery.attempt", "tickit.order.id", "tickit.ticket.id", "tickit.payment.id", "error"}

// Print writes t as a tree: one line per span, children under their parent ordered by start,
// with the offset from the trace's start, the duration, the service, the span name and the
// tags a person searches by.
func Print(w io.Writer, t Trace) {
	fmt.Fprintf(w, "trace %s: %d spans, %d services, %v, from %s\n", t.ID, len(t.Spans), len(t.Services()),
		t.Duration().Round(100*time.Microsecond), t.Start().Format("15:04:05.000"))
	in := map[string]bool{}
	for _, s := range t.Spans {
		in[s.SpanID] = true
	}
	children := map[string][]Span{}
	for _, s := range t.Spans {
		p := s.Parent()
		if !in[p] {
			p = ""
		}
		children[p] = append(children[p], s)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, s := range children[parent] {
			var tags []string
			for _, k := range shown {
				if v := s.Tag(k); v != "" {
					tags = append(tags, strings.TrimPrefix(strings.TrimPrefix(k, "tickit."), "http.response.")+"="+v)
				}
			}
			offset := time.Duration(s.StartTime-t.Spans[0].StartTime) * time.Microsecond
			fmt.Fprintf(w, "%9s %9s  %s%-11s %s  %s\n", "+"+fmtDur(offset), fmtDur(time.Duration(s.Duration)*time.Microsecond),
				strings.Repeat("  ", depth), s.Service, s.OperationName, strings.Join(tags, " "))
			walk(s.SpanID, depth+1)
		}
	}
	walk("", 0)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
