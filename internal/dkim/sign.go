package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultHeaderKeys are the header fields signed when present, in h= order.
var DefaultHeaderKeys = []string{
	"From", "Date", "Subject", "Reply-To", "Sender", "To", "Cc", "Bcc",
	"Message-ID", "In-Reply-To", "References", "Content-Type", "MIME-Version",
	"Content-Transfer-Encoding",
}

// DefaultOversign are the fields listed in h= once more than they occur, so
// that a copy added on the way, or one added where the message had none,
// breaks the signature (RFC 6376 §5.4.2, §8.15): every field of
// DefaultHeaderKeys, since RFC 5322 §3.6 allows each of the originator,
// destination, identification and informational ones at most once, and RFC
// 2045 §3-§6 the MIME ones once per header. Rspamd oversigns the same set.
var DefaultOversign = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Date", "Subject",
	"Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// Errors from signing.
var (
	ErrNoKeys      = sentinel("no signing keys given")
	ErrKeyMismatch = sentinel("signing key unusable")
	ErrFromCount   = sentinel("message must have exactly one From field")
	// errSignerClosed is what a Signer answers after Close.
	errSignerClosed = sentinel("signer already closed")
)

// SignKey is a private key with the domain and selector where its public
// half is published.
type SignKey struct {
	Domain   string
	Selector string
	Signer   crypto.Signer
}

// SignOptions configures a Signer. The zero value of each field is the
// documented default.
type SignOptions struct {
	// Keys sign the message, one DKIM-Signature each, in this order.
	Keys []SignKey
	// HeaderKeys names the fields to sign when present; nil means
	// DefaultHeaderKeys.
	HeaderKeys []string
	// Oversign names fields to list once more than they occur; nil means
	// DefaultOversign, an empty non-nil slice none. A field named here is
	// signed even when HeaderKeys does not name it.
	Oversign []string
	// HeaderCanon and BodyCanon default to Relaxed.
	HeaderCanon, BodyCanon Canonicalization
	// Expiration, when positive, adds x= that long after t=.
	Expiration time.Duration
	// Now is the clock for t=; nil means time.Now.
	Now func() time.Time
	// MaxHeaderBytes bounds the header; zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// Signer signs a message written to it. After Close, Signatures returns the
// DKIM-Signature fields to put on top of the message, unchanged otherwise.
type Signer struct {
	opts   SignOptions
	split  headerSplitter
	fields []field
	inBody bool
	body   *bodyCanon
	hash   bodyHash
	algs   []string // a= of each key
	sigs   []string
	err    error
	closed bool
	// scratch holds the header and work buffers from NewSigner to Close,
	// which gives them back to signScratches.
	scratch *signScratch
}

// signScratch is the memory a Signer needs for one message beside the
// body canonicalizer's buffer. A relay signs every message, and at the size
// of a short one, allocating these each time cost more than using them.
type signScratch struct {
	hash   hashWriter
	header []byte  // the header's bytes, which fields point into
	fields []field // the header fields
	names  []string
	hashIn []byte // the header hash's input
	field  []byte // a signature field
	plan   namePlan
}

// namePlan is what signedNames needs of the lists HeaderKeys and Oversign,
// worked out once and kept with the scratch memory for the next message
// signed with the same lists, as a relay's are.
type namePlan struct {
	keys, over []string // copies of the lists it was made from
	lower      []string // HeaderKeys in lower case
	oversigned []bool   // lower[i] is oversigned too
	extra      []string // the oversigned names HeaderKeys lacks, lower case, each once
}

// matches reports whether the plan was made from these lists.
func (p *namePlan) matches(keys, over []string) bool {
	return p.keys != nil && slices.Equal(p.keys, keys) && slices.Equal(p.over, over)
}

// make checks the names of the lists and makes the plan for them.
func (p *namePlan) make(keys, over []string) error {
	p.keys, p.over = nil, nil // no match until the names are checked
	for _, list := range [][]string{keys, over} {
		for _, name := range list {
			if !validTagFieldName(name) {
				return fmt.Errorf("dkim: invalid header field name %q", clip(name))
			}
		}
	}
	// Field names are ASCII (validTagFieldName), so lower case and ==
	// compare them as RFC 5322 §1.2.2 says, without case.
	p.lower = lowerKeys(p.lower[:0], keys)
	lowerOver := lowerKeys(nil, over)
	p.oversigned = p.oversigned[:0]
	for _, key := range p.lower {
		p.oversigned = append(p.oversigned, slices.Contains(lowerOver, key))
	}
	p.extra = p.extra[:0]
	for i, key := range lowerOver {
		if !slices.Contains(p.lower, key) && !slices.Contains(lowerOver[:i], key) {
			p.extra = append(p.extra, key)
		}
	}
	p.keys = append(make([]string, 0, len(keys)), keys...)
	p.over = append(make([]string, 0, len(over)), over...)
	return nil
}

// maxScratch is the largest buffer kept for reuse: a header of many
// kilobytes is rare and need not pin its memory.
const maxScratch = 64 << 10

var signScratches = sync.Pool{New: func() any { return &signScratch{hash: sha256.New()} }}

func getSignScratch() *signScratch {
	sc := signScratches.Get().(*signScratch)
	sc.hash.(interface{ Reset() }).Reset()
	return sc
}

func putSignScratch(sc *signScratch) {
	if cap(sc.header) > maxScratch || cap(sc.hashIn) > maxScratch || cap(sc.field) > maxScratch ||
		cap(sc.fields) > maxScratch/64 || cap(sc.names) > maxScratch/64 {
		return
	}
	clear(sc.fields) // the names of uncommon fields
	sc.header, sc.fields, sc.names = sc.header[:0], sc.fields[:0], sc.names[:0]
	sc.hashIn, sc.field = sc.hashIn[:0], sc.field[:0]
	signScratches.Put(sc)
}

// bodyHash is a SHA-256 of the canonical body.
type bodyHash struct{ h hashWriter }

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

// NewSigner checks the options and returns a Signer ready for the message.
func NewSigner(opts *SignOptions) (*Signer, error) {
	o := *opts
	if len(o.Keys) == 0 {
		return nil, ErrNoKeys
	}
	algs := make([]string, len(o.Keys))
	for i, k := range o.Keys {
		alg, err := algorithmFor(k.Signer)
		if err != nil {
			return nil, err
		}
		algs[i] = alg
		if !validDomain(k.Domain) || !validSelector(k.Selector) {
			return nil, errorf(ErrKeyMismatch, ": ", "invalid domain %q or selector %q", clip(k.Domain), clip(k.Selector))
		}
	}
	if o.HeaderKeys == nil {
		o.HeaderKeys = DefaultHeaderKeys
	}
	if o.Oversign == nil {
		o.Oversign = DefaultOversign
	}
	if o.HeaderCanon == "" {
		o.HeaderCanon = Relaxed
	}
	if o.BodyCanon == "" {
		o.BodyCanon = Relaxed
	}
	for _, c := range []Canonicalization{o.HeaderCanon, o.BodyCanon} {
		if c != Simple && c != Relaxed {
			return nil, fmt.Errorf("dkim: unknown canonicalization %q", c)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	sc := getSignScratch()
	if !sc.plan.matches(o.HeaderKeys, o.Oversign) {
		if err := sc.plan.make(o.HeaderKeys, o.Oversign); err != nil {
			putSignScratch(sc)
			return nil, err
		}
	}
	s := &Signer{opts: o, split: headerSplitter{max: o.MaxHeaderBytes}, algs: algs, scratch: sc}
	s.hash.h = s.scratch.hash
	s.body = newBodyCanon(o.BodyCanon, s.hash.h)
	return s, nil
}

// validTagFieldName reports whether name is a valid field name
// (validFieldName) that can go in h=, a tag value, which ";" would end (RFC
// 6376 §3.2). One pass: it runs for every name of every message signed.
func validTagFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' || c == ';' {
			return false
		}
	}
	return true
}

// algorithmFor names the a= value for a key: rsa-sha256 or ed25519-sha256.
func algorithmFor(k crypto.Signer) (string, error) {
	if k == nil {
		return "", errorf(ErrKeyMismatch, ": ", "nil key")
	}
	if k, ok := k.(ed25519.PrivateKey); ok && len(k) == ed25519.PrivateKeySize {
		return "ed25519-sha256", nil // without Public, which copies the key
	}
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return "", errorf(ErrKeyMismatch, ": ", "RSA key of %d bits (RFC 8301 minimum is 1024)", pub.N.BitLen())
		}
		return "rsa-sha256", nil
	case ed25519.PublicKey:
		return "ed25519-sha256", nil
	}
	return "", errorf(ErrKeyMismatch, ": ", "%T keys cannot sign DKIM", k.Public())
}

// Write takes the next bytes of the message.
func (s *Signer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.inBody {
		_, s.err = s.body.Write(p)
		return len(p), s.err
	}
	done, header, body, err := s.split.feed(p)
	if err != nil {
		s.err = err
		return 0, err
	}
	if done {
		if s.err = s.startBody(header); s.err == nil {
			_, s.err = s.body.Write(body)
		}
		s.split = headerSplitter{}
	}
	return len(p), s.err
}

func (s *Signer) startBody(header []byte) error {
	sc := s.scratch
	fields, buf, err := appendHeaderFields(sc.fields[:0], sc.header, header)
	sc.fields, sc.header = fields, buf
	if err != nil {
		return err
	}
	from := 0
	for _, f := range fields {
		if f.key == "from" {
			from++
		}
	}
	if from != 1 {
		return errorf(ErrFromCount, " ", "(it has %d)", from)
	}
	s.fields, s.inBody = fields, true
	return nil
}

// Close finishes the message and computes the signatures. It gives the
// Signer's working memory back for the next message: Write and Close after
// Close return an error.
func (s *Signer) Close() error {
	if s.err != nil {
		return s.err
	}
	if !s.inBody {
		if s.err = s.startBody(s.split.rest()); s.err != nil {
			return s.err
		}
	}
	if s.err = s.body.Close(); s.err != nil {
		return s.err
	}
	sc := s.scratch
	defer func() {
		// Nothing may use the header or the hash from here on.
		s.fields, s.hash.h, s.scratch = nil, nil, nil
		putSignScratch(sc)
		if s.err == nil {
			s.err = errSignerClosed
		}
	}()
	bh := s.hash.h.Sum(nil)
	names := s.signedNames(sc.names[:0])
	sc.names = names
	now := s.opts.Now()
	s.sigs = make([]string, 0, len(s.opts.Keys))
	for i, k := range s.opts.Keys {
		sig := Signature{
			Version:      "1",
			Algorithm:    s.algs[i],
			HeaderCanon:  s.opts.HeaderCanon,
			BodyCanon:    s.opts.BodyCanon,
			Domain:       k.Domain,
			Selector:     k.Selector,
			Headers:      names,
			BodyHash:     bh,
			BodyLength:   -1,
			Timestamp:    now,
			HasTimestamp: true,
		}
		if s.opts.Expiration > 0 {
			sig.Expiration, sig.HasExpiration = now.Add(s.opts.Expiration), true
		}
		// The whole field is built in one buffer, then copied once into
		// the string returned.
		field := appendSignaturePrefix(sc.field[:0], &sig)
		digest, hashIn := appendHeaderHash(sc.hashIn[:0], s.opts.HeaderCanon, s.fields, names, field)
		sc.hashIn = hashIn
		b, err := signDigest(k.Signer, digest[:])
		if err != nil {
			s.err = err
			return err
		}
		field = append(appendFoldBase64(field, b, len("b=")), crlf...)
		sc.field = field
		s.sigs = append(s.sigs, string(field))
	}
	return nil
}

// Signatures returns the DKIM-Signature fields, each ending in CRLF, in the
// order of the keys. Put them on top of the message in that order.
func (s *Signer) Signatures() []string { return s.sigs }

// Sign reads a whole message and returns its DKIM-Signature fields.
func Sign(r io.Reader, opts *SignOptions) ([]string, error) {
	s, err := NewSigner(opts)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(s, r); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return s.Signatures(), nil
}

// signedNames builds h=: each configured field as often as it occurs, an
// oversigned one once more, so that it is listed even when absent; then the
// oversigned fields HeaderKeys does not name, the same way. It appends them
// to names, following the plan NewSigner made or found for the lists.
func (s *Signer) signedNames(names []string) []string {
	p := &s.scratch.plan
	add := func(key string, over bool) {
		n := 0
		for i := range s.fields {
			if s.fields[i].key == key {
				n++
			}
		}
		if over {
			n++
		}
		for ; n > 0; n-- {
			names = append(names, key)
		}
	}
	for i, key := range p.lower {
		add(key, p.oversigned[i])
	}
	for _, key := range p.extra {
		add(key, true)
	}
	return names
}

// lowerKeys appends the names in lower case to dst.
func lowerKeys(dst, names []string) []string {
	for _, name := range names {
		dst = append(dst, lowerKey(name))
	}
	return dst
}

// headerHash computes the hash signed in b= (RFC 6376 §3.7): the fields named
// in h=, picked bottom-up, canonicalized, then the DKIM-Signature field itself
// with an empty b= value and no final CRLF.
//
// The canonical fields are gathered in one buffer and hashed at once: at the
// size of a header, a hash and a buffer for each field cost more than the
// hashing.
func headerHash(c Canonicalization, fields []field, names []string, sigNoB []byte) []byte {
	sum, _ := appendHeaderHash(nil, c, fields, names, sigNoB)
	return sum[:]
}

// appendHeaderHash is headerHash gathering the hash's input in buf's
// memory, from its start; it returns buf for reuse.
func appendHeaderHash(buf []byte, c Canonicalization, fields []field, names []string, sigNoB []byte) ([sha256.Size]byte, []byte) {
	size := len(sigNoB) + len(crlf)
	for _, f := range fields {
		size += len(f.raw)
	}
	buf = slices.Grow(buf[:0], size)
	p := newHeaderPicker(fields)
	for _, name := range names {
		if f := p.pick(name); f != nil {
			buf = appendCanonicalHeader(buf, c, f.raw)
		}
	}
	// The signature field itself, with its CRLF removed after
	// canonicalization.
	if c == Simple {
		buf = append(buf, sigNoB...)
	} else {
		buf = appendRelaxedHeader(buf, sigNoB)
		buf = buf[:len(buf)-len(crlf)]
	}
	return sha256.Sum256(buf), buf
}

// signHeader signs the header hash: RSA PKCS#1 v1.5 over SHA-256, or Ed25519
// over the SHA-256 digest (RFC 8463 §3).
func signHeader(k crypto.Signer, c Canonicalization, fields []field, names []string, sigNoB []byte) ([]byte, error) {
	return signDigest(k, headerHash(c, fields, names, sigNoB))
}

// signDigest signs a header hash as signHeader does.
func signDigest(k crypto.Signer, digest []byte) ([]byte, error) {
	var opts crypto.SignerOpts = crypto.SHA256
	if isEd25519(k) {
		opts = crypto.Hash(0)
	}
	b, err := k.Sign(rand.Reader, digest, opts)
	if err != nil {
		// The signer's error stays in the chain (a PKCS#11 token's
		// pkcs11.ErrToken, say), for the caller to classify.
		return nil, &detailError{class: ErrKeyMismatch, sep: ": ", detail: err.Error(), cause: err}
	}
	return b, nil
}

// isEd25519 reports whether k makes Ed25519 signatures. The key type of the
// standard library is told without Public, which copies the public key.
func isEd25519(k crypto.Signer) bool {
	if _, ok := k.(ed25519.PrivateKey); ok {
		return true
	}
	_, ok := k.Public().(ed25519.PublicKey)
	return ok
}

// maxLine is where signature lines are folded (RFC 5322 §2.1.1 advises 78).
const maxLine = 78

// formatSignaturePrefix renders a DKIM-Signature field up to and including
// "b=", folded at tag boundaries and inside h=. It writes the tags a Signer
// sets: never l= (RFC 6376 §8.2) nor q= (dns/txt is the default).
func formatSignaturePrefix(s *Signature) string {
	return string(appendSignaturePrefix(make([]byte, 0, 256+16*len(s.Headers)), s))
}

// appendSignaturePrefix appends formatSignaturePrefix(s) to dst.
func appendSignaturePrefix(dst []byte, s *Signature) []byte {
	f := folder{b: dst, line: len("DKIM-Signature:")}
	f.b = append(f.b, "DKIM-Signature:"...)
	f.tag("v=", s.Version)
	f.tag("a=", s.Algorithm)
	f.parts("c=", string(s.HeaderCanon), "/", string(s.BodyCanon), ";")
	f.tag("d=", s.Domain)
	f.tag("s=", s.Selector)
	if s.Identity != "" {
		f.tag("i=", s.Identity)
	}
	var num [20]byte
	if s.HasTimestamp {
		f.tagBytes("t=", strconv.AppendInt(num[:0], s.Timestamp.Unix(), 10))
	}
	if s.HasExpiration {
		f.tagBytes("x=", strconv.AppendInt(num[:0], s.Expiration.Unix(), 10))
	}
	// The names go in as parts, not concatenated: with every default field
	// oversigned h= has twenty-odd names, and a string each adds up.
	for i, name := range s.Headers {
		pre, post := "", ":"
		if i == 0 {
			pre = "h="
		}
		if i == len(s.Headers)-1 {
			post = ";"
		}
		f.parts(pre, name, post, "", "")
	}
	var bh [88]byte // the base64 of a SHA-512 digest
	if n := base64.StdEncoding.EncodedLen(len(s.BodyHash)); n <= len(bh) {
		base64.StdEncoding.Encode(bh[:n], s.BodyHash)
		f.tagBytes("bh=", bh[:n])
	} else {
		f.tag("bh=", base64.StdEncoding.EncodeToString(s.BodyHash))
	}
	return append(f.b, "\r\n b="...)
}

// folder appends words to a header field, folding its lines.
type folder struct {
	b    []byte
	line int
	join bool // the last word ended in ":" inside h=
}

// tag appends the tag name=value; after a space, or on a new folded line
// when it would pass maxLine.
func (f *folder) tag(name, value string) { f.parts(name, value, ";", "", "") }

// tagBytes is tag with a value in bytes.
func (f *folder) tagBytes(name string, value []byte) {
	f.fold(len(name) + len(value) + 1)
	f.b = append(append(append(f.b, name...), value...), ';')
	f.line += len(name) + len(value) + 1
	f.join = false
}

// parts appends the word a+b+c+d+e as tag does, without joining the
// strings first. Words inside h= ending in ":" join the next without a
// space.
func (f *folder) parts(a, b, c, d, e string) {
	n := len(a) + len(b) + len(c) + len(d) + len(e)
	f.fold(n)
	f.b = append(append(append(append(append(f.b, a...), b...), c...), d...), e...)
	f.line += n
	f.join = n > 0 && f.b[len(f.b)-1] == ':'
}

// fold starts a word of n bytes: after a space (none after a joining
// word), or on a new folded line when it would pass maxLine.
func (f *folder) fold(n int) {
	sep := 1
	if f.join {
		sep = 0
	}
	if f.line+sep+n > maxLine {
		f.b = append(f.b, "\r\n "...)
		f.line = 1
		return
	}
	if sep == 1 {
		f.b = append(f.b, ' ')
	}
	f.line += sep
}

// foldBase64 folds a base64 value into lines of at most maxLine, the first
// line already holding indent characters after its leading space.
func foldBase64(data []byte, indent int) string {
	return string(appendFoldBase64(nil, data, indent))
}

// appendFoldBase64 appends foldBase64(data, indent) to dst.
func appendFoldBase64(dst, data []byte, indent int) []byte {
	var arr [1024]byte // the base64 of an RSA-4096 signature is 684 bytes
	var v []byte
	if n := base64.StdEncoding.EncodedLen(len(data)); n <= len(arr) {
		v = arr[:n]
		base64.StdEncoding.Encode(v, data)
	} else {
		v = []byte(base64.StdEncoding.EncodeToString(data))
	}
	room := maxLine - 1 - indent
	for len(v) > room {
		dst = append(append(dst, v[:room]...), "\r\n "...)
		v = v[room:]
		room = maxLine - 1
	}
	return append(dst, v...)
}
