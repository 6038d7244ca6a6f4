package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// handle delivers one message the way the real Broker does: eventing-natss's JetStream
// dispatcher (pkg/channel/jetstream/dispatcher/message_dispatcher.go at 03a34594d69c) posts it
// to Knative's broker filter, which posts it to the Trigger's subscriber and answers with what
// the subscriber said (filterAnswer). Then, as the dispatcher's send and processDispatchResult:
//   - a 2xx is acknowledged (and a reply event goes back into the Broker);
//   - a failure of the last attempt (attempt > retry) goes to the dead letters, whatever it is;
//   - before it, a 5xx, 408 or 429 is delivered again after the backoff of this attempt;
//   - any other failure is terminated: the event is dropped, it reaches no dead-letter sink.
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
	sent := e.Clone()
	_ = sent.Context.SetExtension(TTLExtension, nil) // the filter removes the Broker's hop count

	start := time.Now()
	ctx, endSpan := b.traceAttempt(ctx, tr.name, e, attempt) // tracing.go
	stopProgress := b.inProgress(msg)
	out := b.send(ctx, tr.subscriber, sent, tr.timeout)
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
	case attempt > tr.retry:
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
	case out.retryable():
		rec.Stage = StageRetry
		b.feed.publish(rec)
		_ = msg.NakWithDelay(tr.backoff(attempt))
	default:
		rec.Stage = StageDropped
		rec.Error = strings.TrimPrefix(rec.Error+"; ", "; ") + "a final answer before the last attempt: dropped, as the NATS channel's dispatcher terminates it"
		b.feed.publish(rec)
		_ = msg.Term()
		b.log.Warnw("event dropped: the subscriber gave a final answer before the last attempt (the real Broker terminates it too)",
			"trigger", tr.name, "id", e.ID(), "type", e.Type(), "code", out.code, "attempt", attempt, "body", string(out.body))
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

// outcome is what Knative's broker filter answers the dispatcher for one attempt.
type outcome struct {
	code  int
	body  []byte // the subscriber's body on a failure, or the dispatch error
	err   error  // no HTTP answer from the subscriber (connection refused, timeout)
	reply *cloudevents.Event
	// dest is the subscriber when the filter answered with the subscriber's own failure (its
	// ErrExtensionInfo body); nil when the dead letter gets no knativeerror* extensions: the
	// attempt timed out between the dispatcher and the filter, or the filter refused a 2xx body
	// that is not a CloudEvent.
	dest *url.URL
}

func (o outcome) ok() bool { return o.code/100 == 2 }

// retryable: what the NATS channel's dispatcher delivers again (processDispatchResult).
func (o outcome) retryable() bool {
	return o.code/100 == 5 || o.code == http.StatusRequestTimeout || o.code == http.StatusTooManyRequests
}

// attemptMargin is what eventing-natss adds to the delivery spec's timeout for one attempt:
// the consumer's AckWait is timeout + 500 ms and the request deadline AckWait - 200 ms
// (buildPullConsumerConfig, CalcRequestTimeout).
const attemptMargin = 300 * time.Millisecond

// send posts the event in binary mode and reads the answer as Knative's broker filter does
// (pkg/broker/filter/filter_handler.go, eventing v0.50.0): a failure is answered with the
// subscriber's status; no answer at all with 500 and "dispatch error: ..." (kncloudevents); a
// 2xx whose body is neither empty nor a CloudEvent with 502; a 2xx with a CloudEvent carries it
// as the reply. An attempt that outlives timeout is the dispatcher's own timeout: 500.
func (b *Broker) send(ctx context.Context, to *url.URL, e cloudevents.Event, timeout time.Duration) outcome {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, to.String(), nil)
	if err != nil {
		return outcome{code: http.StatusInternalServerError, err: err}
	}
	if err := cehttp.WriteRequest(actx, binding.ToMessage(&e), req); err != nil {
		return outcome{code: http.StatusInternalServerError, err: err}
	}
	req.Header.Set("Prefer", "reply") // as Knative's dispatcher: a reply event is welcome
	injectTrace(req.Context(), req)
	resp, err := b.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var body []byte
		if body, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20)); err == nil {
			return b.read(actx, to, resp, body)
		}
	}
	out := outcome{code: http.StatusInternalServerError, err: err, body: []byte("dispatch error: " + err.Error())}
	if actx.Err() == nil || ctx.Err() != nil {
		out.dest = to // the filter reached no subscriber and says so
	}
	return out
}

// read turns the subscriber's answer into the filter's.
func (b *Broker) read(ctx context.Context, to *url.URL, resp *http.Response, body []byte) outcome {
	if resp.StatusCode/100 != 2 {
		return outcome{code: resp.StatusCode, body: body, dest: to}
	}
	msg := cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body)))
	if msg.ReadEncoding() == binding.EncodingUnknown {
		if len(body) > 0 {
			b.log.Warnw("a 2xx with a body that is not a CloudEvent: the filter answers 502, delivered again", "url", to.String())
			return outcome{code: http.StatusBadGateway, err: errors.New("the subscriber's 2xx body is not a CloudEvent (the filter answers 502)")}
		}
		return outcome{code: resp.StatusCode}
	}
	reply, err := binding.ToEvent(ctx, msg)
	if err != nil {
		b.log.Warnw("the subscriber's reply is not a valid CloudEvent: the filter answers 502", "url", to.String(), "error", err)
		return outcome{code: http.StatusBadGateway, err: fmt.Errorf("the reply is not a valid CloudEvent: %w", err)}
	}
	return outcome{code: resp.StatusCode, reply: reply}
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
