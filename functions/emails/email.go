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
	StatusSending = "sending"  // one delivery owns the send until LeaseUntil
	StatusRetry   = "retry"    // the last try failed in a way a later try may not
	StatusSent    = "sent"     // SendGrid accepted it
	StatusFailed  = "failed"   // SendGrid refused it for good (4xx): never tried again
	StatusNotSent = "not sent" // no SENDGRID_API_KEY: written to the log instead
)

// Final reports a status after which the order never gets another email.
func Final(status string) bool {
	return status == StatusSent || status == StatusFailed || status == StatusNotSent
}

// Takeable reports whether a delivery may (re)send an existing record's email now: after a
// retryable failure, or when the delivery that owned the send died (its lease ran out).
func Takeable(status string, leaseUntil, now time.Time) bool {
	return status == StatusRetry || (status == StatusSending && !now.Before(leaseUntil))
}
