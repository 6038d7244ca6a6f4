package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	kneattributes "knative.dev/eventing/pkg/kncloudevents/attributes"
)

// Headers of a dead letter in its stream.
const (
	headerTrigger  = "Tickit-Trigger"
	headerAttempts = "Tickit-Attempts"
)

// DeadLetter is an event that could not be delivered to a Trigger's subscriber, with the
// knativeerrordest, knativeerrorcode and knativeerrordata extensions Knative adds.
type DeadLetter struct {
	Seq      uint64            `json:"seq"` // position in the dead-letter stream
	Trigger  string            `json:"trigger"`
	Time     time.Time         `json:"time"`
	Attempts int               `json:"attempts"`
	Event    cloudevents.Event `json:"event"`
}

// deadLetter keeps the event in the dead-letter stream and, when the delivery spec names a
// dead-letter sink, sends it there too (once; the stream copy is the one that is kept). The
// event is the one the Broker stored (with its hop count), with the knativeerrordest,
// knativeerrorcode and knativeerrordata extensions set by Knative's own transformers when the
// filter answered with the subscriber's failure, as eventing-natss's dispatcher does
// (kncloudevents' dispatchExecutionInfoTransformers); without them after a timeout or a 502.
func (b *Broker) deadLetter(ctx context.Context, tr *trigger, e cloudevents.Event, out outcome, attempt int, seq uint64) error {
	dl := e.Clone()
	if out.dest != nil {
		// Knative encodes the body into at most KnativeErrorDataExtensionMaxLength bytes of
		// base64; here the whole body is encoded, then cut to that length.
		data := base64.StdEncoding.EncodeToString(out.body)
		msg := binding.ToMessage(&dl)
		withExt, err := binding.ToEvent(ctx, msg, kneattributes.KnativeErrorTransformers(*out.dest, out.code, data)...)
		if err != nil {
			return fmt.Errorf("dead letter %s: error extensions: %w", e.ID(), err)
		}
		dl = *withExt
	}
	raw, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: b.deadLetterSubject(tr.consumer), Data: raw, Header: nats.Header{}}
	// One dead letter per stream message and trigger, also when this runs twice after a crash.
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/%d", tr.consumer, seq))
	msg.Header.Set(headerTrigger, tr.name)
	msg.Header.Set(headerAttempts, strconv.Itoa(attempt))
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		return err
	}
	if tr.deadLetterSink != nil {
		if res := b.send(ctx, tr.deadLetterSink, dl, tr.timeout); !res.ok() {
			b.log.Warnw("the dead-letter sink did not take the event; it stays in the dead-letter stream",
				"trigger", tr.name, "id", e.ID(), "sink", tr.deadLetterSink.String(), "code", res.code, "error", res.err)
		}
	}
	return nil
}

// DeadLetters lists the dead letters kept, oldest first.
func (b *Broker) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	stream, err := b.js.Stream(ctx, b.dlq)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	list := []DeadLetter{}
	if info.State.Msgs == 0 {
		return list, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and removed
		}
		if err != nil {
			return nil, err
		}
		dl := DeadLetter{Seq: m.Sequence, Trigger: m.Header.Get(headerTrigger), Time: m.Time}
		dl.Attempts, _ = strconv.Atoi(m.Header.Get(headerAttempts))
		if err := json.Unmarshal(m.Data, &dl.Event); err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		list = append(list, dl)
	}
	return list, nil
}

// ErrNoDeadLetter is returned by Replay when no dead letter has the id.
var ErrNoDeadLetter = errors.New("no dead letter with this id")

// Replay delivers the dead letters whose event id (or stream sequence number) is id again,
// each to the Trigger that could not take it (not to every Trigger), without the error
// extensions, and removes them from the dead letters. A new failure dead-letters it again.
func (b *Broker) Replay(ctx context.Context, id string) (int, error) {
	list, err := b.DeadLetters(ctx)
	if err != nil {
		return 0, err
	}
	stream, err := b.js.Stream(ctx, b.dlq)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dl := range list {
		if dl.Event.ID() != id && strconv.FormatUint(dl.Seq, 10) != id {
			continue
		}
		tr, ok := b.triggers[dl.Trigger]
		if !ok {
			return n, fmt.Errorf("dead letter %d: trigger %q no longer exists", dl.Seq, dl.Trigger)
		}
		e := dl.Event.Clone()
		for _, ext := range []string{kneattributes.KnativeErrorDestExtensionKey, kneattributes.KnativeErrorCodeExtensionKey, kneattributes.KnativeErrorDataExtensionKey} {
			_ = e.Context.SetExtension(ext, nil)
		}
		// A message id of its own: the event id may still be in the duplicate window.
		if _, err := b.publish(ctx, b.subject("replay."+tr.consumer), "replay/"+uuid.NewString(), e); err != nil {
			return n, err
		}
		if err := stream.DeleteMsg(ctx, dl.Seq); err != nil {
			return n, err
		}
		b.feed.publish(Record{Stage: StageReplayed, Event: summary(e), Trigger: tr.name})
		n++
	}
	if n == 0 {
		return 0, ErrNoDeadLetter
	}
	return n, nil
}
