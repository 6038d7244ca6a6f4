package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go/jetstream"
)

// consume delivers the Trigger's messages, up to tr.parallel at once.
func (b *Broker) consume(tr *trigger) error {
	slots := make(chan struct{}, tr.parallel)
	cc, err := tr.cons.Consume(func(msg jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-b.stopped:
			_ = msg.Nak() // closing: the next start delivers it
			return
		}
		if !b.track() {
			<-slots
			_ = msg.Nak()
			return
		}
		go func() {
			defer b.wg.Done()
			defer func() { <-slots }()
			b.handle(tr, msg)
		}()
	})
	if err != nil {
		return fmt.Errorf("broker: consume for trigger %s: %w", tr.name, err)
	}
	tr.cc = cc
	return nil
}

// track counts a delivery in flight, unless the Broker is closing.
func (b *Broker) track() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.wg.Add(1)
	return true
}

// handle delivers one message to the Trigger's subscriber and settles it: acknowledged when
// the subscriber took it or it went to the dead letters, negatively acknowledged with the
// backoff delay when a retry is due.
func (b *Broker) handle(tr *trigger, msg jetstream.Msg) {
	ctx := b.ctx
	var e cloudevents.Event
	if err := json.Unmarshal(msg.Data(), &e); err != nil {
		b.log.Errorw("unreadable message in the stream, dropped", "trigger", tr.name, "error", err)
		_ = msg.Term()
		return
	}
	if !tr.passes(ctx, e) {
		_ = msg.Ack()
		return
	}
	attempt := 1
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		attempt, seq = int(md.NumDelivered), md.Sequence.Stream
	}
	hops := ttl(e)
	_ = e.Context.SetExtension(TTLExtension, nil) // the subscriber never sees the Broker's hop count

	start := time.Now()
	ctx, endSpan := b.traceAttempt(ctx, tr.name, e, attempt) // tracing.go
	stopProgress := b.inProgress(msg)
	out := b.send(ctx, tr.subscriber, e, tr.timeout)
	stopProgress()
	endSpan(out.code, out.err)
	rec := Record{Stage: StageDelivered, Event: summary(e), Trigger: tr.name, Code: out.code, Attempt: attempt, Duration: time.Since(start)}
	if out.err != nil {
		rec.Error = out.err.Error()
	}
	if ctx.Err() != nil {
		_ = msg.Nak() // stopping: the next start delivers it again
		return
	}
	switch {
	case out.ok():
		if err := b.reply(ctx, tr, out, hops); err != nil {
			b.log.Warnw("cannot store the reply event; delivering again", "trigger", tr.name, "id", e.ID(), "error", err)
			_ = msg.NakWithDelay(tr.backoff(attempt))
			return
		}
		b.feed.publish(rec) // before settling, so the feed shows the steps in order
		_ = msg.Ack()
	case out.retryable() && attempt <= tr.retry:
		rec.Stage = StageRetry
		b.feed.publish(rec)
		_ = msg.NakWithDelay(tr.backoff(attempt))
	default:
		if err := b.deadLetter(ctx, tr, e, out, attempt, seq); err != nil {
			b.log.Errorw("cannot keep the dead letter; delivering again", "trigger", tr.name, "id", e.ID(), "error", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		rec.Stage = StageDeadLettered
		b.feed.publish(rec)
		_ = msg.Ack()
		b.log.Warnw("event dead-lettered", "trigger", tr.name, "id", e.ID(), "type", e.Type(),
			"code", out.code, "attempts", attempt, "error", rec.Error)
	}
}

// inProgress tells JetStream, every half AckWait, that the message is still being delivered,
// so that a slow subscriber (up to the delivery timeout) does not get it twice.
func (b *Broker) inProgress(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(b.ackWait / 2)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// outcome is the subscriber's answer to one attempt.
type outcome struct {
	code  int
	body  []byte
	err   error // no HTTP answer at all (connection refused, timeout)
	reply *cloudevents.Event
}

func (o outcome) ok() bool { return o.err == nil && o.code >= 200 && o.code < 300 }

// retryable: what the NATS JetStream channel retries. Every other 4xx (and 3xx) is final.
func (o outcome) retryable() bool {
	return o.err != nil || o.code >= 500 || o.code == http.StatusRequestTimeout || o.code == http.StatusTooManyRequests
}

// send posts the event in binary mode and reads the answer, and the reply event in it.
func (b *Broker) send(ctx context.Context, to *url.URL, e cloudevents.Event, timeout time.Duration) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to.String(), nil)
	if err != nil {
		return outcome{err: err}
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Prefer", "reply") // as Knative's dispatcher: a reply event is welcome
	injectTrace(req.Context(), req)
	resp, err := b.client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	out := outcome{code: resp.StatusCode, body: body}
	if err != nil {
		out.err = err
		return out
	}
	if out.ok() {
		msg := cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body)))
		if msg.ReadEncoding() != binding.EncodingUnknown {
			if reply, err := binding.ToEvent(ctx, msg); err == nil {
				out.reply = reply
			} else {
				b.log.Warnw("the subscriber's reply is not a valid CloudEvent; ignored", "url", to.String(), "error", err)
			}
		}
	}
	return out
}

// reply puts the subscriber's reply event back into the Broker with one hop less; a reply
// without hops left is dropped, which ends reply loops.
func (b *Broker) reply(ctx context.Context, tr *trigger, out outcome, hops int32) error {
	if out.reply == nil {
		return nil
	}
	r := *out.reply
	rec := Record{Stage: StageReplied, Event: summary(r), Trigger: tr.name}
	if err := r.Validate(); err != nil {
		rec.Stage, rec.Error = StageDropped, "invalid reply: "+err.Error()
		b.feed.publish(rec)
		return nil
	}
	if hops-1 <= 0 {
		rec.Stage, rec.Error = StageDropped, "no hops left"
		b.feed.publish(rec)
		b.log.Warnw("reply dropped: hop limit reached", "trigger", tr.name, "id", r.ID(), "type", r.Type())
		return nil
	}
	if err := r.Context.SetExtension(TTLExtension, hops-1); err != nil {
		return err
	}
	b.traceReply(ctx, tr.name, &r) // tracing.go
	if _, err := b.Publish(ctx, r); err != nil {
		return err
	}
	b.feed.publish(rec)
	return nil
}
