// sendgrid.go: sending one email through SendGrid's v3 mail/send API.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/mail"
)

// ErrRejected wraps a SendGrid answer that a retry cannot change (a 4xx but 408 and 429).
var ErrRejected = errors.New("SendGrid rejected the email")

// SendTimeout bounds one call to SendGrid; sendgrid-go sets none of its own.
const SendTimeout = 10 * time.Second

// SendGrid sends email with one API key. Safe for concurrent use: every send builds its own
// request (sendgrid.Client keeps the body in a shared field, so it is not).
type SendGrid struct {
	key, base string
	client    *rest.Client
}

// NewSendGrid returns a sender; base "" is api.sendgrid.com.
func NewSendGrid(key, base string) *SendGrid {
	return &SendGrid{key: key, base: base, client: &rest.Client{HTTPClient: &http.Client{Timeout: SendTimeout}}}
}

// Send delivers m. A nil error means SendGrid accepted it; an error wrapping ErrRejected means
// it never will; any other error (transport, timeout, 408, 429, 5xx) may pass on a later try.
func (s *SendGrid) Send(ctx context.Context, m Email) error {
	msg := mail.NewV3MailInit(mail.NewEmail("", m.From), m.Subject, mail.NewEmail("", m.To),
		mail.NewContent("text/plain", m.Text), mail.NewContent("text/html", m.HTML))
	req := sendgrid.GetRequest(s.key, "/v3/mail/send", s.base)
	req.Method = rest.Post
	req.Body = mail.GetRequestBody(msg)
	resp, err := s.client.SendWithContext(ctx, req)
	if err != nil {
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
