package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheapParams keep tests that need a second set of parameters fast.
var cheapParams = params{time: 1, memory: 64, threads: 1}

func TestHashIsAnArgon2idPHCStringWithItsParameters(t *testing.T) {
	h, err := hashPassword(context.Background(), "correct horse", currentParams)
	if err != nil {
		t.Fatal(err)
	}

	s := h.String()

	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=32768,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(s) {
		t.Fatalf("not the PHC form with the current parameters: %s", s)
	}
	parsed, err := parseHash(s)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	if parsed.params != currentParams || string(parsed.salt) != string(h.salt) || string(parsed.key) != string(h.key) {
		t.Fatalf("round trip changed the hash: %+v -> %+v", h, parsed)
	}
}

func TestPasswordMatchesOnlyItsOwnHash(t *testing.T) {
	ctx := context.Background()
	// Cheap parameters: matching does not depend on them, and the test stays fast.
	h, _ := hashPassword(ctx, "correct horse", cheapParams)
	again, _ := hashPassword(ctx, "correct horse", cheapParams)

	if ok, err := h.matches(ctx, "correct horse"); err != nil || !ok {
		t.Errorf("right password: want a match, got %v %v", ok, err)
	}
	for _, wrong := range []string{"correct horsE", "correct horse ", "", "correct"} {
		if ok, _ := h.matches(ctx, wrong); ok {
			t.Errorf("%q matched the hash of another password", wrong)
		}
	}
	if string(h.salt) == string(again.salt) || h.String() == again.String() {
		t.Error("two hashes of one password share a salt")
	}
}

func TestHashWithOtherParametersStillVerifies(t *testing.T) {
	ctx := context.Background()
	old, _ := hashPassword(ctx, "correct horse", cheapParams)

	parsed, err := parseHash(old.String())

	if err != nil || parsed.params != cheapParams {
		t.Fatalf("want parameters %+v, got %+v (%v)", cheapParams, parsed.params, err)
	}
	if ok, _ := parsed.matches(ctx, "correct horse"); !ok {
		t.Error("a hash made with other parameters no longer verifies")
	}
}

func TestDummyHashCostsWhatARealOneDoesAndMatchesNothing(t *testing.T) {
	ctx := context.Background()
	d := dummyHash()

	if d.params != currentParams || len(d.salt) != saltLen || len(d.key) != keyLen {
		t.Fatalf("the dummy hash must have the current parameters and sizes: %+v", d)
	}
	for _, pw := range []string{"", "password", "12345678"} {
		if ok, _ := d.matches(ctx, pw); ok {
			t.Errorf("%q matched the dummy hash", pw)
		}
	}
}

func TestParseHashRejectsMalformedStrings(t *testing.T) {
	good := "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 43)
	if _, err := parseHash(good); err != nil {
		t.Fatalf("the well-formed control case fails: %v", err)
	}
	for _, bad := range []string{
		"",
		"plaintext",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "t=3,m=65536,p=2", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=65536,t=3", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=65536,t=0,p=2", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=65536,t=3,p=256", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=8,t=3,p=2", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=+65536,t=3,p=2", 1),
		strings.Replace(good, "m=65536,t=3,p=2", "m=99999999999,t=3,p=2", 1),
		strings.Replace(good, "c29tZXNhbHRzb21lc2FsdA", "c29t", 1),    // 3-byte salt
		strings.Replace(good, "c29tZXNhbHRzb21lc2FsdA", "not*b64", 1), // not base64
		strings.TrimSuffix(good, strings.Repeat("A", 30)),             // 13-char key
		good + "$extra",
	} {
		if _, err := parseHash(bad); !errors.Is(err, errBadHash) {
			t.Errorf("%q: want errBadHash, got %v", bad, err)
		}
	}
}

func TestHashingWaitsForAFreeSlotAndGivesUpWithItsCaller(t *testing.T) {
	for range cap(argonSlots) { // every slot busy
		argonSlots <- struct{}{}
	}
	defer func() {
		for range cap(argonSlots) {
			<-argonSlots
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := hashPassword(ctx, "correct horse", currentParams)

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled while every slot is busy, got %v", err)
	}
}
