// Package ping runs Knative PingSources locally: on the cron schedule (5 fields, 6 with
// seconds, or a descriptor such as @every 1m, in the source's timezone), or every Tick when
// one is given, it posts a dev.knative.sources.ping event with the source's data to its sink.
package ping

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
)

// EventType is the type of the events a PingSource sends.
const EventType = "dev.knative.sources.ping"

// Source is one PingSource, ready to run.
type Source struct {
	ps       *sourcesv1.PingSource
	sink     *url.URL
	schedule cron.Schedule
	client   *http.Client
	log      *zap.SugaredLogger
}

// New reads the PingSource. tick > 0 replaces its schedule with a fixed period.
func New(ps *sourcesv1.PingSource, sink *url.URL, tick time.Duration, client *http.Client, log *zap.SugaredLogger) (*Source, error) {
	s := &Source{ps: ps, sink: sink, client: client, log: log}
	if tick > 0 {
		s.schedule = cron.ConstantDelaySchedule{Delay: tick}
		return s, nil
	}
	sched, err := Parse(ps.Spec.Schedule, ps.Spec.Timezone)
	if err != nil {
		return nil, fmt.Errorf("pingsource %s: %w", ps.Name, err)
	}
	s.schedule = sched
	return s, nil
}

// Parse reads a cron schedule of 5 fields (or 6, the first being seconds), or a descriptor.
func Parse(schedule, timezone string) (cron.Schedule, error) {
	if timezone != "" {
		schedule = "CRON_TZ=" + timezone + " " + schedule
	}
	sched, err := cron.ParseStandard(schedule)
	if err == nil {
		return sched, nil
	}
	withSeconds := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	if sched, err2 := withSeconds.Parse(schedule); err2 == nil {
		return sched, nil
	}
	return nil, fmt.Errorf("schedule %q: %w", schedule, err)
}

// Run sends an event at every time of the schedule until ctx ends.
func (s *Source) Run(ctx context.Context) {
	for {
		now := time.Now()
		next := s.schedule.Next(now)
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		if err := s.Send(ctx); err != nil && ctx.Err() == nil {
			s.log.Warnw("ping not delivered to its sink", "pingsource", s.ps.Name, "error", err)
		}
	}
}

// Event builds one ping event, as Knative's mtping adapter does.
func (s *Source) Event() (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(uuid.NewString())
	e.SetType(EventType)
	e.SetSource(sourcesv1.PingSourceSource(s.ps.Namespace, s.ps.Name))
	e.SetTime(time.Now())
	contentType := s.ps.Spec.ContentType
	switch {
	case s.ps.Spec.DataBase64 != "":
		data, err := base64.StdEncoding.DecodeString(s.ps.Spec.DataBase64)
		if err != nil {
			return e, fmt.Errorf("pingsource %s: dataBase64: %w", s.ps.Name, err)
		}
		if err := e.SetData(contentType, data); err != nil {
			return e, err
		}
	case s.ps.Spec.Data != "":
		if err := e.SetData(contentType, []byte(s.ps.Spec.Data)); err != nil {
			return e, err
		}
	}
	return e, nil
}

// Send posts one ping event to the sink; the sink must answer 2xx.
func (s *Source) Send(ctx context.Context) error {
	e, err := s.Event()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sink.String(), bytes.NewReader(nil))
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the sink answered %d", resp.StatusCode)
	}
	return nil
}
