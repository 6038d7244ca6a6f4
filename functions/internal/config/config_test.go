package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tickit/tickit/functions/internal/config"
)

func TestMissingAndBadSettingsAreNamedInOneLine(t *testing.T) {
	t.Setenv("JWT_KEY", "")
	t.Setenv("EXPIRATION_WINDOW", "soon")
	t.Setenv("COOKIE_SECURE", "yes please")
	var env config.Env
	env.Required("JWT_KEY")
	window := env.Duration("EXPIRATION_WINDOW", 15*time.Minute)
	env.Bool("COOKIE_SECURE", false)

	err := env.Err()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want one line, got %v", err)
	}
	for _, name := range []string{"JWT_KEY", "EXPIRATION_WINDOW", "COOKIE_SECURE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%q does not name %s", err, name)
		}
	}
	if window != 15*time.Minute {
		t.Errorf("a bad duration falls back to the default, got %v", window)
	}
}

func TestSettingsAreRead(t *testing.T) {
	t.Setenv("JWT_KEY", "k")
	t.Setenv("EXPIRATION_WINDOW", "3s")
	t.Setenv("COOKIE_SECURE", "true")
	var env config.Env
	if env.Required("JWT_KEY") != "k" || env.Duration("EXPIRATION_WINDOW", 0) != 3*time.Second ||
		!env.Bool("COOKIE_SECURE", false) || env.String("UNSET_THING", "d") != "d" || env.Err() != nil {
		t.Fatalf("settings not read: %v", env.Err())
	}
}
