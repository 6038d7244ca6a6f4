// password.go: argon2id password hashes in the PHC string format, which records the cost
// parameters next to the salt and key, so they can be raised later without breaking old hashes.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// params are argon2id's cost settings.
type params struct {
	time    uint32 // passes over memory
	memory  uint32 // KiB
	threads uint8
}

// currentParams cost about 35-40 ms per hash on one core of the 2-core build machine (idle;
// see the README). They exceed OWASP's minimum (19 MiB, 2 passes). Hashes made with other
// parameters still verify, and are rehashed with these at the next sign-in.
var currentParams = params{time: 2, memory: 32 * 1024, threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// argonSlots bounds how many hashes run at once: each takes params.memory and a core, so more
// than one per core adds memory and latency but no throughput, and a burst of sign-ups could
// otherwise exhaust the container's memory.
var argonSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// passwordHash is a decoded "$argon2id$v=19$m=...,t=...,p=...$salt$key" string.
type passwordHash struct {
	params
	salt, key []byte
}

var b64 = base64.RawStdEncoding

// hashPassword derives a new hash of password with a fresh random salt.
func hashPassword(ctx context.Context, password string, p params) (passwordHash, error) {
	h := passwordHash{params: p, salt: make([]byte, saltLen)}
	_, _ = rand.Read(h.salt) // crypto/rand never fails (it crashes the program instead)
	key, err := derive(ctx, password, h.salt, p, keyLen)
	h.key = key
	return h, err
}

// dummyHash has the current parameters and a random key that no password derives, so that
// checking a password against it costs what a real check costs: a sign-in for an unknown
// email takes as long as one with a wrong password.
func dummyHash() passwordHash {
	h := passwordHash{params: currentParams, salt: make([]byte, saltLen), key: make([]byte, keyLen)}
	_, _ = rand.Read(h.salt)
	_, _ = rand.Read(h.key)
	return h
}

// matches reports whether password derives h's key, comparing in constant time.
func (h passwordHash) matches(ctx context.Context, password string) (bool, error) {
	key, err := derive(ctx, password, h.salt, h.params, uint32(len(h.key)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// derive runs argon2id once a slot is free; a caller that gives up waiting gets ctx's error.
func derive(ctx context.Context, password string, salt []byte, p params, n uint32) ([]byte, error) {
	select {
	case argonSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-argonSlots }()
	return argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, n), nil
}

// String encodes h in the PHC string format.
func (h passwordHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

var errBadHash = errors.New("password hash is not an argon2id PHC string")

// parseHash decodes a PHC string written by String.
func parseHash(s string) (passwordHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return passwordHash{}, errBadHash
	}
	var h passwordHash
	var err error
	if h.params, err = parseParams(parts[3]); err != nil {
		return passwordHash{}, err
	}
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return passwordHash{}, fmt.Errorf("%w: bad salt", errBadHash)
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 {
		return passwordHash{}, fmt.Errorf("%w: bad key", errBadHash)
	}
	return h, nil
}

// parseParams reads "m=<KiB>,t=<passes>,p=<threads>" in that order, as argon2's reference
// implementation writes it.
func parseParams(s string) (params, error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return params{}, fmt.Errorf("%w: parameters %q", errBadHash, s)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n == 0 {
			return params{}, fmt.Errorf("%w: parameters %q", errBadHash, s)
		}
		vals[i] = n
	}
	if vals[2] > 255 || vals[0] < 8*vals[2] { // argon2 needs 8 KiB per thread
		return params{}, fmt.Errorf("%w: parameters %q", errBadHash, s)
	}
	return params{memory: uint32(vals[0]), time: uint32(vals[1]), threads: uint8(vals[2])}, nil
}
