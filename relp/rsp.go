package relp

import (
	"bytes"
	"fmt"
	"strconv"
)

// codeOK is the status code of a response that accepts a command. The
// specification defines 200 (OK) and 500 (error) and says that every code
// but 200 is an error.
const codeOK = 200

// A response is the data of an "rsp" frame: CODE [SP HUMANMSG] [LF DATA].
type response struct {
	code int    // three digits; 200 is OK, anything else an error
	msg  []byte // human-readable text, without LF; may be empty
	data []byte // what follows the first LF: the offers of an open response
}

// ok reports whether the command was carried out.
func (r response) ok() bool { return r.code == codeOK }

// parseRsp parses the data of an "rsp" frame. The results alias data.
//
// The code must be exactly three digits, followed by the end of the data,
// SP (then text up to LF or the end) or LF (then command data). librelp
// itself sends "200 OK", "200 OK\n" followed by offers, and "500 " with a
// reason; it answers "close" with an rsp of no data at all
// ("N rsp 0"), which parseRsp rejects: a client that sent close should
// take any rsp with that TXNR as the answer.
func parseRsp(data []byte) (response, error) {
	if len(data) == 0 {
		return response{}, rspError("no status code (empty rsp data)")
	}
	if len(data) < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) {
		return response{}, rspError("status code: want 3 digits, got " + strconv.Quote(string(data[:min(len(data), 3)])))
	}
	r := response{code: int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')}
	rest := data[3:]
	if len(rest) == 0 {
		return r, nil
	}
	switch rest[0] {
	case ' ':
		rest = rest[1:]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			r.msg, r.data = rest[:i:i], rest[i+1:]
		} else {
			r.msg = rest
		}
	case '\n':
		r.data = rest[1:]
	default:
		return response{}, rspError("want SP or LF after the status code, got " + quoteByte(rest[0]))
	}
	if len(r.msg) == 0 {
		r.msg = nil
	}
	if len(r.data) == 0 {
		r.data = nil
	}
	return r, nil
}

func rspError(reason string) error {
	return fmt.Errorf("%w rsp: %s", errMalformed, reason)
}

// Limits of offers, as librelp sets them (RELP_MAX_OFFER_FEATURENAME,
// RELP_MAX_OFFER_FEATUREVALUE, RELP_MAX_OFFER_VALUES).
const (
	maxOfferName   = 32
	maxOfferValue  = 255
	maxOfferValues = 64
)

// protocolVersion is the relp_version this package speaks: 0, as librelp
// does. The specification calls version 1 "this specification" and 0
// experimental, but every librelp to date offers and accepts 0 only, and
// its client refuses a server that answers with a higher version.
const protocolVersion = 0

// openOffers is the data of the client's "open" command. imrelp
// requires the syslog command ("500 required command not supported by
// client" otherwise).
const openOffers = "relp_version=0\nrelp_software=reconn\ncommands=syslog"

// An offer is one feature of a session: a name and its values.
type offer struct {
	name   string
	values []string
}

// offers is the list of offers in an "open" command or its response, in
// the order they came.
type offers []offer

// parseOffers parses offers: lines separated by LF, each a name of 1 to
// 32 bytes, optionally followed by "=" and values separated by commas.
// Empty lines and empty values are skipped, as librelp does; a value may
// have up to 255 bytes and an offer up to 64 values.
func parseOffers(data []byte) (offers, error) {
	var o offers
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		name, vals, hasVals := bytes.Cut(line, []byte("="))
		switch {
		case len(name) == 0:
			return nil, offerError("empty offer name in " + strconv.Quote(string(line)))
		case len(name) > maxOfferName:
			return nil, offerError("offer name longer than 32 bytes: " + strconv.Quote(string(name[:maxOfferName])) + "...")
		}
		of := offer{name: string(name)}
		for hasVals {
			var v []byte
			v, vals, hasVals = bytes.Cut(vals, []byte(","))
			if len(v) == 0 {
				continue
			}
			if len(v) > maxOfferValue {
				return nil, offerError("value of offer " + strconv.Quote(of.name) + " longer than 255 bytes")
			}
			if len(of.values) == maxOfferValues {
				return nil, offerError("offer " + strconv.Quote(of.name) + " with more than 64 values")
			}
			of.values = append(of.values, string(v))
		}
		o = append(o, of)
	}
	return o, nil
}

func offerError(reason string) error {
	return fmt.Errorf("%w offers: %s", errMalformed, reason)
}

// get returns the values of the first offer with the given name.
func (o offers) get(name string) (values []string, ok bool) {
	for _, of := range o {
		if of.name == name {
			return of.values, true
		}
	}
	return nil, false
}

// version returns the value of the relp_version offer, which a server
// must include in its answer to "open".
func (o offers) version() (int, error) {
	v, ok := o.get("relp_version")
	if !ok {
		return 0, offerError("no relp_version offer")
	}
	if len(v) != 1 {
		return 0, offerError(fmt.Sprintf("relp_version with %d values; want 1", len(v)))
	}
	if len(v[0]) > maxDigits {
		return 0, offerError("relp_version " + strconv.Quote(v[0]) + " is not a version number")
	}
	n := 0
	for i := 0; i < len(v[0]); i++ {
		if !isDigit(v[0][i]) {
			return 0, offerError("relp_version " + strconv.Quote(v[0]) + " is not a version number")
		}
		n = n*10 + int(v[0][i]-'0')
	}
	return n, nil
}

// supports reports whether the offers list cmd in "commands". A client
// must not send a command that the server's answer does not list.
func (o offers) supports(cmd string) bool {
	v, _ := o.get("commands")
	for _, c := range v {
		if c == cmd {
			return true
		}
	}
	return false
}

// checkOpen checks a server's answer to "open": a 200 response whose
// offers include a relp_version this package speaks and the syslog
// command. It returns the offers.
func checkOpen(r response) (offers, error) {
	if !r.ok() {
		return nil, fmt.Errorf("relp: open refused: %d %s", r.code, r.msg)
	}
	o, err := parseOffers(r.data)
	if err != nil {
		return nil, err
	}
	v, err := o.version()
	if err != nil {
		return nil, err
	}
	if v > protocolVersion {
		return nil, fmt.Errorf("relp: server speaks relp_version %d; want %d", v, protocolVersion)
	}
	if !o.supports(cmdSyslog) {
		return nil, fmt.Errorf("relp: server does not offer the syslog command")
	}
	return o, nil
}

// checkFromServer reports an error if f cannot come from a server: a
// server sends "rsp" with the TXNR of the command it answers (1 or more)
// and hints with TXNR 0, never a command of its own.
func checkFromServer(f frame) error {
	switch {
	case f.cmd == cmdRsp && f.txnr == 0:
		return fmt.Errorf("%w: rsp with TXNR 0 from the server", errMalformed)
	case f.cmd != cmdRsp && f.txnr != 0:
		return fmt.Errorf("%w: command %q with TXNR %d from the server; a server sends only rsp and hints (TXNR 0)", errMalformed, f.cmd, f.txnr)
	}
	return nil
}
