// Package config reads a function's settings from the environment and stops start-up with
// one clear line when a required one is missing or unreadable.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env collects settings and the problems found while reading them.
type Env struct {
	problems []string
}

// Required returns the variable's value; an empty or unset variable is a problem.
func (e *Env) Required(name string) string {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		e.problems = append(e.problems, "missing required environment variable "+name)
	}
	return v
}

// String returns the variable's value, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// Duration parses a Go duration ("15m", "3s"); it must be positive.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.problems = append(e.problems, fmt.Sprintf("%s=%q is not a positive Go duration such as 15m", name, v))
		return def
	}
	return d
}

// Bool parses true/false (and the other forms strconv.ParseBool knows).
func (e *Env) Bool(name string, def bool) bool {
	v := e.String(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.problems = append(e.problems, fmt.Sprintf("%s=%q is not true or false", name, v))
		return def
	}
	return b
}

// Err returns the problems found so far as one line, or nil.
func (e *Env) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return fmt.Errorf("config: %s", strings.Join(e.problems, "; "))
}

// Check stops the process with one line on stderr when any setting is missing or bad.
func (e *Env) Check() {
	if err := e.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
