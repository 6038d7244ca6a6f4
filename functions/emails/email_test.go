package main

import (
	"strings"
	"testing"

	"github.com/tickit/tickit/events"
)

func TestMoneyFormatsDollarsAndCents(t *testing.T) {
	cases := map[events.Price]string{
		1999: "$19.99", 2000: "$20.00", 5: "$0.05", 100: "$1.00",
		123456: "$1,234.56", 100000000: "$1,000,000.00", 99999999: "$999,999.99",
	}
	for cents, want := range cases {
		if got := Money(cents); got != want {
			t.Errorf("Money(%d) = %q, want %q", cents, got, want)
		}
	}
}

func TestTheConfirmationNamesTicketPriceOrderAndPayment(t *testing.T) {
	// Arrange
	o := completedOrder("65a1b2c3d4e5f60718293a4c", "Concert, row 7")

	// Act
	m := Confirmation("tickets@tickit.dev", o)

	// Assert
	if m.From != "tickets@tickit.dev" || m.To != o.UserEmail || m.Subject != "Your ticket: Concert, row 7" {
		t.Fatalf("from %q to %q subject %q", m.From, m.To, m.Subject)
	}
	for _, body := range []string{m.Text, m.HTML} {
		for _, want := range []string{"Concert, row 7", "$19.99", o.ID, o.PaymentID} {
			if !strings.Contains(body, want) {
				t.Fatalf("body lacks %q:\n%s", want, body)
			}
		}
	}
}

func TestTheHTMLBodyEscapesTheTitleAndTheSubjectIsOneLine(t *testing.T) {
	// Arrange
	o := completedOrder("65a1b2c3d4e5f60718293a4c", "<script>alert(1)</script>\r\nBcc: x@evil.test & co")

	// Act
	m := Confirmation("tickets@tickit.dev", o)

	// Assert
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;alert(1)&lt;/script&gt; Bcc: x@evil.test &amp; co") {
		t.Fatalf("title not escaped in HTML:\n%s", m.HTML)
	}
	if !strings.Contains(m.Text, "<script>alert(1)</script> Bcc: x@evil.test & co") {
		t.Fatalf("plain text should show the title as typed:\n%s", m.Text)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Fatalf("subject spans lines: %q", m.Subject)
	}
}
