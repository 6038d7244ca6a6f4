// sendgrid.go: sending one email through SendGrid's v3 mail/send API.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/tickit/tickit/functions/internal/outbound"
)

var (
	// ErrRejected wraps a SendGrid answer that a retry cannot change (a 4xx but 408 and 429).
	ErrRejected = errors.New("SendGrid rejected the email")
	// ErrUnknown wraps a send whose outcome is unknown: the request went out whole and no
	// answer came back (SENDGRID_TIMEOUT ran out, or the connection broke). SendGrid may
	// have accepted it. mail/send has no idempotency key, so a retry may send it twice.
	ErrUnknown = errors.New("SendGrid may or may not have accepted the email")
)

// DefaultSendTimeout bounds one call to SendGrid unless SENDGRID_TIMEOUT says otherwise;
// sendgrid-go sets none of its own. Well over SendGrid's usual answer (well under a second)
// and its slow days (the 11 s and 35 s answers of issue 17), so a slow SendGrid is waited for,
// not asked again.
const DefaultSendTimeout = time.Minute

// SendGrid sends email with one API key. Safe for concurrent use: every send builds its own
// request (sendgrid.Client keeps the body in a shared field, so it is not).
type SendGrid struct {
	key, base string
	timeout   time.Duration
	client    *rest.Client
}

// NewSendGrid returns a sender; base "" is api.sendgrid.com; timeout bounds each call.
func NewSendGrid(key, base string, timeout time.Duration) *SendGrid {
	return &SendGrid{key: key, base: base, timeout: timeout,
		client: &rest.Client{HTTPClient: &http.Client{Timeout: timeout, Transport: outbound.Transport()}}}
}

// Send delivers m. A nil error means SendGrid accepted it; an error wrapping ErrRejected means
// it never will; one wrapping ErrUnknown means it may have (see ErrUnknown); any other error
// (the request never went out whole, 408, 429, 5xx) means it did not, and a later try may pass.
// The order id goes along as the custom argument order_id, so SendGrid's activity feed and
// event webhook name the order of every message.
func (s *SendGrid) Send(ctx context.Context, m Email) error {
	msg := mail.NewV3MailInit(mail.NewEmail("", m.From), m.Subject, mail.NewEmail("", m.To),
		mail.NewContent("text/plain", m.Text), mail.NewContent("text/html", m.HTML))
	msg.SetCustomArg("order_id", m.OrderID)
	req := sendgrid.GetRequest(s.key, "/v3/mail/send", s.base)
	req.Method = rest.Post
	req.Body = mail.GetRequestBody(msg)
	// Whether the request was written whole tells a send SendGrid never saw (safe to retry)
	// from one whose answer was lost (unknown).
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		wrote.Store(i.Err == nil)
	}})
	resp, err := s.client.SendWithContext(ctx, req)
	if err != nil {
		if wrote.Load() {
			return fmt.Errorf("%w: %w", ErrUnknown, err)
		}
		return fmt.Errorf("SendGrid: %w", err)
	}
	// sendgrid-go returns every HTTP answer as a response, never as an error.
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return fmt.Errorf("%w: %d %s", ErrRejected, code, truncate(resp.Body, 500))
	default:
		return fmt.Errorf("SendGrid answered %d %s", code, truncate(resp.Body, 500))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
