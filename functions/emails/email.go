// email.go: the confirmation email and the life of its record, with no I/O.
package main

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/tickit/tickit/events"
)

// Email is one message as it goes out.
type Email struct {
	From, To, Subject string
	Text, HTML        string
	OrderID           string // sent along as SendGrid's custom argument order_id
}

// confirmation is what the templates show; every field is plain text (the HTML template
// escapes it).
type confirmation struct {
	Title, Price, OrderID, PaymentID string
}

var textBody = texttemplate.Must(texttemplate.New("text").Parse(`Hello,

thank you for your purchase: your order is complete and the ticket is yours.

Ticket:   {{.Title}}
Price:    {{.Price}}
Order:    {{.OrderID}}
Payment:  {{.PaymentID}}

Keep this email as your receipt.

tickit
`))

var htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html>
<body style="font-family: sans-serif">
<p>Hello,</p>
<p>thank you for your purchase: your order is complete and the ticket is yours.</p>
<table>
<tr><th align="left">Ticket</th><td>{{.Title}}</td></tr>
<tr><th align="left">Price</th><td>{{.Price}}</td></tr>
<tr><th align="left">Order</th><td>{{.OrderID}}</td></tr>
<tr><th align="left">Payment</th><td>{{.PaymentID}}</td></tr>
</table>
<p>Keep this email as your receipt.</p>
<p>tickit</p>
</body>
</html>
`))

// Confirmation is the email that tells the buyer of a completed order what they bought.
func Confirmation(from string, o events.OrderCompleted) Email {
	// A title is one line in a subject: newlines and tabs would break the header.
	title := strings.Join(strings.Fields(o.Ticket.Title), " ")
	c := confirmation{Title: title, Price: Money(o.Ticket.Price), OrderID: o.ID, PaymentID: o.PaymentID}
	var text, html bytes.Buffer
	// Executing these fixed templates on plain strings cannot fail.
	_ = textBody.Execute(&text, c)
	_ = htmlBody.Execute(&html, c)
	return Email{
		From: from, To: o.UserEmail,
		Subject: "Your ticket: " + title,
		Text:    text.String(), HTML: html.String(),
		OrderID: o.ID,
	}
}

// Money formats a price in US dollars the way a receipt shows it: $1,234.50.
func Money(p events.Price) string {
	c := int64(p)
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	whole := fmt.Sprint(c / 100)
	var grouped strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			grouped.WriteByte(',')
		}
		grouped.WriteRune(d)
	}
	return fmt.Sprintf("%s$%s.%02d", sign, grouped.String(), c%100)
}

// Statuses of an order's email record.
const (
	StatusSending   = "sending"    // one delivery owns the send until LeaseUntil
	StatusRetry     = "retry"      // the last try was not accepted (SendGrid never saw it, or said 408/429/5xx)
	StatusUnknown   = "unknown"    // the last try's outcome is unknown (ErrUnknown, or its sender died)
	StatusSent      = "sent"       // SendGrid accepted it
	StatusFailed    = "failed"     // SendGrid refused it for good (4xx): never tried again
	StatusNotSent   = "not sent"   // no SENDGRID_API_KEY: written to the log instead
	StatusMaybeSent = "maybe sent" // more unknown outcomes than MaxUnknownRetries: never tried again
)

// MaxUnknownRetries is how many times an email is tried again after a try whose outcome is
// unknown. A buyer without a receipt is worse than one duplicate, so the one unknown outcome
// is retried; then no more. Hence the bound: SendGrid accepts at most 1+MaxUnknownRetries = 2
// emails per order, and 2 only when a try's answer was lost (SENDGRID_TIMEOUT ran out, the
// connection broke, or the process died between SendGrid's 202 and recording it) after
// SendGrid had in fact accepted it.
const MaxUnknownRetries = 1

// Final reports a status after which the order never gets another email.
func Final(status string) bool {
	return status == StatusSent || status == StatusFailed || status == StatusNotSent || status == StatusMaybeSent
}

// Unknowns is how many tries of a record have an unknown outcome once a delivery looks at
// it now: the recorded ones, plus the current try's when its sender died holding the lease.
func Unknowns(status string, unknowns int, leaseUntil, now time.Time) int {
	if status == StatusSending && !now.Before(leaseUntil) {
		return unknowns + 1
	}
	return unknowns
}

// AfterUnknown is the status of a record whose tries had this many unknown outcomes: one more
// try may follow (StatusUnknown), or none (StatusMaybeSent).
func AfterUnknown(unknowns int) string {
	if unknowns > MaxUnknownRetries {
		return StatusMaybeSent
	}
	return StatusUnknown
}

// Lease is how long a delivery owns an order's send before another may take it over: the
// send's timeout plus a margin for recording its outcome, so a live sender always settles
// before anyone else sends.
func Lease(sendTimeout time.Duration) time.Duration { return sendTimeout + 30*time.Second }
