package forward

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/reconn/reconn/internal/proto"
)

// ErrAuthFailed is wrapped by the error of a shared-key handshake that
// failed: the server refused the client's key, user or password (its
// reason follows), or its answer did not prove that it holds the key.
// Redialing does not mend it; DialContext returns it when the first
// connection meets it.
var ErrAuthFailed = errors.New("forward: authentication failed")

// auth is what the handshake needs, fixed for one Conn.
type auth struct {
	sharedKey          string
	hostname           string
	username, password string
}

// handshake runs the Forward protocol's shared-key handshake on nc,
// bounded by ctx: the server's HELO with its nonce (and, if it wants
// users, a salt for the password), the client's PING with a digest of the
// key, and the server's PONG, whose own digest proves it holds the key.
func (a *auth) handshake(ctx context.Context, nc net.Conn) (err error) {
	done := proto.BoundConn(ctx, nc)
	defer func() {
		done()
		if err != nil && ctx.Err() != nil && !errors.Is(err, ErrAuthFailed) {
			err = fmt.Errorf("forward: handshake: %w", context.Cause(ctx))
		}
	}()
	r := answerReader{nc: nc}
	helo, err := r.next()
	if err != nil {
		return fmt.Errorf("forward: waiting for the server's HELO: %w", err)
	}
	n, as, err := parseHelo(helo)
	if err != nil {
		return err
	}
	nonce, authSalt := string(n), string(as) // before the reader's buffer is reused
	var raw [16]byte
	rand.Read(raw[:]) // never fails (crypto/rand)
	salt := hex.EncodeToString(raw[:])
	ping := appendArrayHeader(nil, 6)
	ping = appendStr(ping, "PING")
	ping = appendStr(ping, a.hostname)
	ping = appendStr(ping, salt)
	ping = appendStr(ping, digest(salt, a.hostname, nonce, a.sharedKey))
	if len(authSalt) > 0 {
		ping = appendStr(ping, a.username)
		ping = appendStr(ping, digest(authSalt, a.username, a.password))
	} else {
		ping = appendStr(ping, "")
		ping = appendStr(ping, "")
	}
	if _, err := nc.Write(ping); err != nil {
		return fmt.Errorf("forward: sending PING: %w", err)
	}
	pong, err := r.next()
	if err != nil {
		return fmt.Errorf("forward: waiting for the server's PONG: %w", err)
	}
	host, proof, err := parsePong(pong)
	if err != nil {
		return err
	}
	want := digest(salt, string(host), nonce, a.sharedKey)
	if subtle.ConstantTimeCompare(proof, []byte(want)) != 1 {
		return fmt.Errorf("%w: the server's PONG does not prove that it holds the shared key", ErrAuthFailed)
	}
	if len(r.rest) > 0 {
		return fmt.Errorf("%w: bytes after PONG, before any request", errMalformed)
	}
	return nil
}

// digest is the handshake's digest of its parts: SHA-512 of them in
// order, in lower-case hex.
func digest(parts ...string) string {
	h := sha512.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// answerReader reads whole MessagePack values from the server, none
// longer than maxAnswer, into a buffer that grows from 4 KiB as long
// values need it: the handshake's HELO and PONG, then the session's acks.
type answerReader struct {
	nc   net.Conn
	buf  []byte
	rest []byte // read, not yet returned
}

// next returns the next value, aliasing the reader's buffer until the
// following call. An error of the connection (a read deadline, say)
// leaves what was read of an incomplete value for the next call.
func (r *answerReader) next() ([]byte, error) {
	for {
		if len(r.rest) > 0 {
			n, err := skip(r.rest, 0)
			if err == nil {
				v := r.rest[:n]
				r.rest = r.rest[n:]
				return v, nil
			}
			if !errors.Is(err, errShort) {
				return nil, err
			}
			if len(r.rest) >= maxAnswer {
				return nil, fmt.Errorf("%w: an answer longer than %d bytes", errMalformed, maxAnswer)
			}
		}
		switch {
		case r.buf == nil:
			r.buf = make([]byte, 4<<10)
		case len(r.rest) == len(r.buf):
			r.buf = make([]byte, min(2*len(r.buf), maxAnswer))
		}
		// What is incomplete moves to the front, with room after it.
		k := copy(r.buf, r.rest)
		n, err := r.nc.Read(r.buf[k:])
		r.rest = r.buf[:k+n]
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("forward: the server closed the connection")
			}
			return nil, err
		}
	}
}

// parseHelo decodes ["HELO", {"nonce": n, "auth": salt, "keepalive": b}]
// and returns the nonce and the password salt (empty if the server asks
// for no user). Strings may come as str or bin.
func parseHelo(b []byte) (nonce, authSalt []byte, err error) {
	fields, err := command(b, "HELO", 2)
	if err != nil {
		return nil, nil, err
	}
	opts := fields[1]
	t, n, _ := head(opts)
	if t.kind != kMap {
		return nil, nil, fmt.Errorf("%w: HELO's options are not a map", errMalformed)
	}
	found := false
	for range t.n {
		k, kn, _ := head(opts[n:])
		n += kn
		v, _, _ := head(opts[n:])
		vn, _ := skip(opts[n:], 1)
		n += vn
		if k.kind != kStr {
			continue
		}
		switch string(k.b) {
		case "nonce":
			if v.kind != kStr && v.kind != kBin {
				return nil, nil, fmt.Errorf("%w: HELO's nonce is not a string", errMalformed)
			}
			nonce, found = v.b, true
		case "auth":
			if v.kind == kStr || v.kind == kBin {
				authSalt = v.b
			}
		}
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: HELO without a nonce", errMalformed)
	}
	return nonce, authSalt, nil
}

// parsePong decodes ["PONG", ok, reason, server hostname, digest] and
// returns the hostname and the digest; a PONG that says no is an error
// wrapping ErrAuthFailed with the server's reason.
func parsePong(b []byte) (host, proof []byte, err error) {
	f, err := command(b, "PONG", 5)
	if err != nil {
		return nil, nil, err
	}
	ok, _, _ := head(f[1])
	reason, _, _ := head(f[2])
	h, _, _ := head(f[3])
	d, _, _ := head(f[4])
	if ok.kind != kBool {
		return nil, nil, fmt.Errorf("%w: PONG's result is not a boolean", errMalformed)
	}
	if ok.i == 0 {
		why := "no reason given"
		if reason.kind == kStr && len(reason.b) > 0 {
			why = fmt.Sprintf("%q", reason.b)
		}
		return nil, nil, fmt.Errorf("%w: the server refused the handshake: %s", ErrAuthFailed, why)
	}
	if h.kind != kStr && h.kind != kBin || d.kind != kStr && d.kind != kBin {
		return nil, nil, fmt.Errorf("%w: PONG's hostname or digest is not a string", errMalformed)
	}
	return h.b, d.b, nil
}

// command splits the value b, which must be an array of want elements
// whose first is the string name, into its elements.
func command(b []byte, name string, want int) ([][]byte, error) {
	t, n, err := head(b)
	if err != nil {
		return nil, err
	}
	if t.kind != kArray || t.n == 0 {
		return nil, fmt.Errorf("%w: want %s, got a value that is not an array", errMalformed, name)
	}
	first, _, _ := head(b[n:])
	if first.kind != kStr || string(first.b) != name || t.n != want {
		return nil, fmt.Errorf("%w: want %s of %d elements, got %s of %d", errMalformed, name, want, printable(first), t.n)
	}
	fields := make([][]byte, t.n)
	for i := range fields {
		m, _ := skip(b[n:], 1)
		fields[i] = b[n : n+m]
		n += m
	}
	return fields, nil
}

// printable names a value for an error: a short string as it is, and
// anything else by its kind.
func printable(t token) string {
	if t.kind == kStr && len(t.b) <= 16 {
		return fmt.Sprintf("%q", t.b)
	}
	return "a value of another kind"
}
