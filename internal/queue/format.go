package queue

// On-disk format. Each queued message is two files named by its id:
//
//	msg/<id>    written once (into an empty spare file, spare.go, or a
//	            temporary file renamed into place), never changed after:
//	            "DKIMDQ1 <envlen> <bodylen> <envcrc> <bodycrc>\n" (fixed width,
//	            lower-case hex: 8, 16, 8 and 8 digits), then the envelope record
//	            as JSON (envlen bytes), then "\n", then the body (bodylen bytes)
//	            exactly as given to Enqueue. The CRCs are CRC-32C.
//	state/<id>  absent until the first delivery attempt ends (absent means
//	            every recipient is pending); else
//	            "DKIMDS1 <len> <crc>\n" (8 hex digits each), then the state as
//	            JSON (len bytes): {"rcpts":[Recipient…],"dsns":N}, one
//	            recipient per envelope recipient, in order.
//
// A file that fails any check (magic, lengths, CRC, JSON, a state that does
// not match its envelope) is corrupt: the message is moved to quarantine/ and
// never delivered. The body CRC is checked while the body streams out, before
// the final dot is sent.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/mailaddr"
)

const (
	msgMagic   = "DKIMDQ1 "
	stateMagic = "DKIMDS1 "
	// msgHeaderLen is len("DKIMDQ1 xxxxxxxx xxxxxxxxxxxxxxxx xxxxxxxx xxxxxxxx\n").
	msgHeaderLen = len(msgMagic) + 8 + 1 + 16 + 1 + 8 + 1 + 8 + 1
	// stateHeaderLen is len("DKIMDS1 xxxxxxxx xxxxxxxx\n").
	stateHeaderLen = len(stateMagic) + 8 + 1 + 8 + 1
	// maxRecordLen bounds what is read into memory from a spool file.
	maxRecordLen = 4 << 20
	// maxAddrLen is far above RFC 5321 §4.5.3.1.3 (256 octets per path).
	maxAddrLen = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is the envelope part of msg/<id>.
type record struct {
	ID     string    `json:"id"`
	Queued time.Time `json:"queued"`
	Envelope
}

// state is the content of state/<id>.
type state struct {
	Rcpts []Recipient `json:"rcpts"`
	DSNs  int         `json:"dsns,omitempty"`
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// msgHeader renders the fixed-width first line of msg/<id>.
func msgHeader(envLen int, bodyLen int64, envCRC, bodyCRC uint32) []byte {
	return fmt.Appendf(nil, "%s%08x %016x %08x %08x\n", msgMagic, envLen, bodyLen, envCRC, bodyCRC)
}

// encodeRecord returns the envelope record as stored.
func encodeRecord(r record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("queue: encode envelope: %w", err)
	}
	return b, nil
}

// msgHead is what the first part of msg/<id> says.
type msgHead struct {
	rec     record
	bodyOff int64 // offset of the body in the file
	bodyLen int64
	bodyCRC uint32
}

// readMsgHead reads and checks the header and envelope record of msg/<id>,
// leaving r at the start of the body.
func readMsgHead(r io.Reader) (msgHead, error) {
	var h [msgHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return msgHead{}, corruptf("short header: %v", err)
	}
	if !bytes.HasPrefix(h[:], []byte(msgMagic)) || h[msgHeaderLen-1] != '\n' {
		return msgHead{}, corruptf("bad magic")
	}
	f := strings.Split(string(h[len(msgMagic):msgHeaderLen-1]), " ")
	if len(f) != 4 || len(f[0]) != 8 || len(f[1]) != 16 || len(f[2]) != 8 || len(f[3]) != 8 {
		return msgHead{}, corruptf("bad header fields")
	}
	envLen, err1 := parseHex(f[0], 31)
	bodyLen, err2 := parseHex(f[1], 62)
	envCRC, err3 := parseHex(f[2], 32)
	bodyCRC, err4 := parseHex(f[3], 32)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return msgHead{}, corruptf("bad header number")
	}
	if envLen > maxRecordLen {
		return msgHead{}, corruptf("envelope of %d bytes", envLen)
	}
	env := make([]byte, envLen+1)
	if _, err := io.ReadFull(r, env); err != nil {
		return msgHead{}, corruptf("short envelope: %v", err)
	}
	if env[envLen] != '\n' {
		return msgHead{}, corruptf("envelope not terminated")
	}
	env = env[:envLen]
	if crc32.Checksum(env, castagnoli) != uint32(envCRC) {
		return msgHead{}, corruptf("envelope checksum mismatch")
	}
	rec, err := decodeRecord(env)
	if err != nil {
		return msgHead{}, err
	}
	return msgHead{rec: rec, bodyOff: int64(msgHeaderLen) + envLen + 1, bodyLen: bodyLen, bodyCRC: uint32(bodyCRC)}, nil
}

func parseHex(s string, bits int) (int64, error) {
	v, err := strconv.ParseUint(s, 16, bits)
	return int64(v), err
}

func decodeRecord(b []byte) (record, error) {
	var rec record
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&rec); err != nil {
		return record{}, corruptf("envelope: %v", err)
	}
	if d.More() {
		return record{}, corruptf("envelope: trailing data")
	}
	if !validID(rec.ID) {
		return record{}, corruptf("envelope: bad id")
	}
	if err := checkEnvelope(rec.Envelope); err != nil {
		return record{}, corruptf("envelope: %v", err)
	}
	return rec, nil
}

// checkEnvelope applies the rules Enqueue enforces.
func checkEnvelope(e Envelope) error {
	if e.From != "" && !validAddr(e.From) {
		return fmt.Errorf("%w: bad sender address", ErrInvalid)
	}
	if len(e.To) == 0 {
		return fmt.Errorf("%w: no recipients", ErrInvalid)
	}
	for _, a := range e.To {
		if !validAddr(a) || !routable(a) {
			return fmt.Errorf("%w: bad recipient address", ErrInvalid)
		}
	}
	for _, s := range []string{e.User, e.Decision, e.ClientAddr} {
		if strings.ContainsAny(s, "\r\n") {
			return fmt.Errorf("%w: line break in metadata", ErrInvalid)
		}
	}
	return nil
}

// validAddr accepts what can go on a MAIL or RCPT line between the angle
// brackets: no controls, spaces or brackets.
func validAddr(a string) bool {
	if a == "" || len(a) > maxAddrLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// routable reports whether a recipient is a mailbox delivery can route:
// one mailaddr.ParseAddress accepts, a domain or an address literal after
// the @ (RFC 5321 §5.1). The relay queues only such addresses, each as
// mailaddr.Address.String gives it.
func routable(addr string) bool {
	_, err := mailaddr.ParseAddress(addr, mailaddr.AddressOptions{IPLiterals: true})
	return err == nil
}

// validID accepts the ids this package makes: letters, digits and '-',
// 1 to 64 bytes, so an id is always a safe file name.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// encodeState renders state/<id>.
func encodeState(s state) ([]byte, error) {
	j, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("queue: encode state: %w", err)
	}
	out := fmt.Appendf(nil, "%s%08x %08x\n", stateMagic, len(j), crc32.Checksum(j, castagnoli))
	return append(out, j...), nil
}

// decodeState parses state/<id> and checks it against the envelope's
// recipients.
func decodeState(b []byte, to []string) (state, error) {
	if len(b) < stateHeaderLen || !bytes.HasPrefix(b, []byte(stateMagic)) || b[stateHeaderLen-1] != '\n' {
		return state{}, corruptf("state: bad header")
	}
	f := strings.Split(string(b[len(stateMagic):stateHeaderLen-1]), " ")
	if len(f) != 2 || len(f[0]) != 8 || len(f[1]) != 8 {
		return state{}, corruptf("state: bad header fields")
	}
	n, err1 := parseHex(f[0], 31)
	crc, err2 := parseHex(f[1], 32)
	if err1 != nil || err2 != nil {
		return state{}, corruptf("state: bad header number")
	}
	j := b[stateHeaderLen:]
	if int64(len(j)) != n {
		return state{}, corruptf("state: %d bytes, header says %d", len(j), n)
	}
	if crc32.Checksum(j, castagnoli) != uint32(crc) {
		return state{}, corruptf("state: checksum mismatch")
	}
	var s state
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return state{}, corruptf("state: %v", err)
	}
	if d.More() {
		return state{}, corruptf("state: trailing data")
	}
	if len(s.Rcpts) != len(to) {
		return state{}, corruptf("state: %d recipients, envelope has %d", len(s.Rcpts), len(to))
	}
	if s.DSNs < 0 || s.DSNs > 1000 {
		return state{}, corruptf("state: bad dsn count")
	}
	for i, r := range s.Rcpts {
		if r.Addr != to[i] {
			return state{}, corruptf("state: recipient %d does not match envelope", i)
		}
		switch r.Status {
		case Pending, Delivered, Deferred, Bounced:
		default:
			return state{}, corruptf("state: recipient %d: bad status", i)
		}
		if r.Attempts < 0 {
			return state{}, corruptf("state: recipient %d: bad attempt count", i)
		}
	}
	return s, nil
}

// initialState is the state of a message no attempt has ended for.
func initialState(to []string) state {
	s := state{Rcpts: make([]Recipient, len(to))}
	for i, a := range to {
		s.Rcpts[i] = Recipient{Addr: a, Status: Pending}
	}
	return s
}
