//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/dkimd/dkimd/internal/keys"
)

// poolWait bounds the wait for a free session: a token that hangs makes
// signing fail (and the relay answer 451) instead of holding connections
// open for ever.
const poolWait = 30 * time.Second

// Token is a PKCS#11 token reached through its module. It connects on first
// use and again after the token failed (at most once per RetryInterval), so
// a token that comes back is used again without a restart; a refused PIN
// is never tried twice. It is safe for concurrent use.
type Token struct {
	cfg Config

	mu       sync.Mutex
	conn     *conn     // nil until connected, and after a failure
	lastErr  error     // why the last connection attempt failed
	lastTry  time.Time // when
	attempts int       // connection attempts, for tests
}

// New checks cfg and gives a Token that connects on first use.
func New(cfg Config) (*Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Token{cfg: cfg}, nil
}

// Open is New followed by Connect.
func Open(cfg Config) (*Token, error) {
	t, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := t.Connect(); err != nil {
		return nil, err
	}
	return t, nil
}

// Label gives the token's label.
func (t *Token) Label() string { return t.cfg.Token }

// Connect loads the module, finds the token and logs in, unless that is
// done already. ErrToken, ErrLogin.
func (t *Token) Connect() error {
	c, err := t.get()
	if err != nil {
		return err
	}
	c.release()
	return nil
}

// Close logs out and unloads the module. The Token is not used after.
func (t *Token) Close() error {
	t.mu.Lock()
	c := t.conn
	t.conn, t.lastErr, t.lastTry = nil, fmt.Errorf("%w: token %q: closed", ErrToken, t.cfg.Token), time.Now()
	t.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// get gives the connection, acquired (release it), connecting if needed.
func (t *Token) get() (*conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.conn; c != nil {
		if c.acquire() {
			return c, nil
		}
		t.conn = nil
	}
	if t.lastErr != nil && (errors.Is(t.lastErr, ErrLogin) || time.Since(t.lastTry) < t.cfg.retryInterval()) {
		return nil, t.lastErr
	}
	c, err := dial(t.cfg)
	t.lastTry = time.Now()
	t.attempts++
	if err != nil {
		t.lastErr = err
		return nil, err
	}
	t.conn, t.lastErr = c, nil
	c.acquire()
	return c, nil
}

// fail classifies an error of an operation on c, released already. An
// error that means the token or its session is gone drops the connection,
// so that the next operation connects anew.
func (t *Token) fail(c *conn, op string, err error) error {
	if errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrUnsupported) {
		return err
	}
	if gone(err) {
		t.mu.Lock()
		mine := t.conn == c
		if mine {
			t.conn = nil
		}
		t.mu.Unlock()
		if mine {
			// Closed before anyone connects again, so that the module is
			// finalised and loaded afresh when this was the last use.
			c.close()
		}
	}
	return fmt.Errorf("%w: token %q: %s: %v", ErrToken, t.cfg.Token, op, err)
}

// Generate makes a key pair inside the token, labelled label with a random
// ID: the private half sensitive and not extractable, good for signing
// only. It gives the object's name and the public key. RSA keys of 2048,
// 3072 or 4096 bits and Ed25519 keys.
func (t *Token) Generate(spec keys.Spec, label string) (Object, crypto.PublicKey, error) {
	spec, err := spec.Normalize()
	if err != nil {
		return Object{}, nil, err
	}
	if spec.Algorithm == keys.RSA && spec.Bits < 2048 {
		return Object{}, nil, fmt.Errorf("%w: RSA %d in a token: use 2048, 3072 or 4096 bits", ErrUnsupported, spec.Bits)
	}
	if label == "" {
		return Object{}, nil, fmt.Errorf("%w: empty object label", ErrConfig)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return Object{}, nil, err
	}
	o := Object{Label: label, ID: hex.EncodeToString(id)}
	c, err := t.get()
	if err != nil {
		return o, nil, err
	}
	var pub crypto.PublicKey
	if spec.Algorithm == keys.Ed25519 {
		pub, err = c.generateEd25519(label, id)
	} else {
		pub, err = c.generateRSA(spec.Bits, label, id)
	}
	c.release()
	if err != nil {
		return o, nil, t.fail(c, "generate "+spec.String(), err)
	}
	return o, pub, nil
}

// Signer gives a crypto.Signer for the key pair o of algorithm alg. Each
// signature is made by the token; a token that fails makes Sign fail with
// ErrToken.
func (t *Token) Signer(alg keys.Algorithm, o Object) (crypto.Signer, error) {
	if _, err := hex.DecodeString(o.ID); err != nil || o.ID == "" || o.Label == "" {
		return nil, fmt.Errorf("%w: object label %q, ID %q", ErrKeyNotFound, o.Label, o.ID)
	}
	c, err := t.get()
	if err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	switch alg {
	case keys.RSA:
		var k crypto11.Signer
		if k, err = c.rsaKey(o); err == nil {
			pub = k.Public()
		}
	case keys.Ed25519:
		pub, err = c.ed25519Public(o)
	default:
		err = fmt.Errorf("%w: algorithm %q", ErrUnsupported, alg)
	}
	c.release()
	if err != nil {
		return nil, t.fail(c, "open key "+o.Label, err)
	}
	return &signer{t: t, alg: alg, o: o, pub: pub}, nil
}

// Destroy deletes both halves of the key pair o from the token. ErrKeyNotFound
// when the token holds neither.
func (t *Token) Destroy(alg keys.Algorithm, o Object) error {
	id, err := hex.DecodeString(o.ID)
	if err != nil || o.ID == "" || o.Label == "" {
		return fmt.Errorf("%w: object label %q, ID %q", ErrKeyNotFound, o.Label, o.ID)
	}
	c, err := t.get()
	if err != nil {
		return err
	}
	err = c.destroy(o, id)
	c.release()
	if err != nil {
		return t.fail(c, "destroy "+o.Label, err)
	}
	return nil
}

// signer is a key pair in the token as a crypto.Signer.
type signer struct {
	t   *Token
	alg keys.Algorithm
	o   Object
	pub crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs digest in the token. For RSA, digest is the hash named by
// opts, signed PKCS#1 v1.5 (CKM_RSA_PKCS over the DigestInfo). For Ed25519,
// opts must name no hash and digest is the message itself, as for
// ed25519.PrivateKey: DKIM's ed25519-sha256 signs the SHA-256 digest
// (RFC 8463 §3), so dkim hands the 32-byte digest with crypto.Hash(0).
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	switch s.alg {
	case keys.RSA:
		if _, pss := opts.(*rsa.PSSOptions); pss {
			return nil, fmt.Errorf("%w: RSA-PSS", ErrUnsupported)
		}
		// The hashes crypto11 has a DigestInfo prefix for.
		switch h := opts.HashFunc(); h {
		case crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512:
			if len(digest) != h.Size() {
				return nil, fmt.Errorf("%w: a %d-byte digest for %v", ErrUnsupported, len(digest), h)
			}
		default:
			return nil, fmt.Errorf("%w: RSA signature with hash %v", ErrUnsupported, h)
		}
	case keys.Ed25519:
		if opts.HashFunc() != 0 {
			return nil, fmt.Errorf("%w: Ed25519ph (a pre-hashed Ed25519 signature)", ErrUnsupported)
		}
		if eo, ok := opts.(interface{ ContextString() string }); ok && eo.ContextString() != "" {
			return nil, fmt.Errorf("%w: Ed25519ctx", ErrUnsupported)
		}
	}
	c, err := s.t.get()
	if err != nil {
		return nil, err
	}
	var sig []byte
	if s.alg == keys.Ed25519 {
		sig, err = c.signEd25519(s.o, digest)
	} else {
		var k crypto11.Signer
		if k, err = c.rsaKey(s.o); err == nil {
			sig, err = k.Sign(nil, digest, opts)
		}
	}
	c.release()
	if err != nil {
		return nil, s.t.fail(c, "sign with "+s.o.Label, err)
	}
	return sig, nil
}

// conn is one connection to the token: crypto11's context, for RSA, and a
// handle of our own on the same module, for Ed25519 and object management.
// Operations hold it acquired (a read lock); close waits for them.
type conn struct {
	c11  *crypto11.Context
	p    *p11.Ctx
	slot uint

	idle chan p11.SessionHandle // open sessions not in use
	open chan struct{}          // one element per open session

	rw     sync.RWMutex
	closed bool

	mu  sync.Mutex
	rsa map[Object]crypto11.Signer
	ed  map[Object]p11.ObjectHandle
}

// dial connects to the token cfg names and logs in.
func dial(cfg Config) (*conn, error) {
	if _, err := os.Stat(cfg.Module); err != nil {
		return nil, fmt.Errorf("%w: module %s: %v", ErrToken, cfg.Module, err)
	}
	n := cfg.maxSessions()
	c11, err := crypto11.Configure(&crypto11.Config{
		Path: cfg.Module, TokenLabel: cfg.Token, Pin: cfg.PIN,
		MaxSessions: n + 1, PoolWaitTimeout: poolWait,
	})
	if err != nil {
		return nil, openError(cfg, err)
	}
	c := &conn{c11: c11, idle: make(chan p11.SessionHandle, n), open: make(chan struct{}, n),
		rsa: map[Object]crypto11.Signer{}, ed: map[Object]p11.ObjectHandle{}}
	// Our own handle on the module: crypto11 initialised it already, and
	// login is per application, so crypto11's login covers our sessions.
	c.p = p11.New(cfg.Module)
	if c.p == nil {
		c11.Close()
		return nil, fmt.Errorf("%w: module %s cannot be loaded", ErrToken, cfg.Module)
	}
	if err := c.p.Initialize(); err != nil && !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		c.p.Destroy()
		c11.Close()
		return nil, fmt.Errorf("%w: module %s: %v", ErrToken, cfg.Module, err)
	}
	if c.slot, err = findSlot(c.p, cfg.Token); err != nil {
		c.p.Destroy()
		c11.Close()
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	return c, nil
}

// openError explains why crypto11 could not open the token. The PIN is
// never part of it.
func openError(cfg Config, err error) error {
	var code p11.Error
	if errors.As(err, &code) {
		switch code {
		case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("%w: token %q refused the PIN (%s); it is not tried again, since more wrong PINs would lock the token: correct it and restart", ErrLogin, cfg.Token, codeName(code))
		case p11.CKR_PIN_LOCKED:
			return fmt.Errorf("%w: token %q: the user PIN is locked (%s); the token's security officer must unlock it", ErrLogin, cfg.Token, codeName(code))
		case p11.CKR_PIN_EXPIRED:
			return fmt.Errorf("%w: token %q: the user PIN has expired (%s)", ErrLogin, cfg.Token, codeName(code))
		}
		return fmt.Errorf("%w: token %q in module %s: %s", ErrToken, cfg.Token, cfg.Module, codeName(code))
	}
	if err.Error() == "could not find PKCS#11 token" {
		return fmt.Errorf("%w: module %s has no token labelled %q (is it present and initialised?)", ErrToken, cfg.Module, cfg.Token)
	}
	return fmt.Errorf("%w: token %q in module %s: %v", ErrToken, cfg.Token, cfg.Module, err)
}

// findSlot gives the slot of the token labelled label.
func findSlot(p *p11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %v", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && ti.Label == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no token labelled %q", label)
}

func (c *conn) acquire() bool {
	c.rw.RLock()
	if c.closed {
		c.rw.RUnlock()
		return false
	}
	return true
}

func (c *conn) release() { c.rw.RUnlock() }

// close waits for the operations under way, then closes the sessions and
// unloads the module (crypto11 finalises it when no context uses it).
func (c *conn) close() {
	c.rw.Lock()
	defer c.rw.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for {
		select {
		case s := <-c.idle:
			_ = c.p.CloseSession(s)
			continue
		default:
		}
		break
	}
	_ = c.c11.Close()
	c.p.Destroy()
}

// session takes a session from the pool, opening one if fewer than the
// maximum are open.
func (c *conn) session() (p11.SessionHandle, error) {
	select {
	case s := <-c.idle:
		return s, nil
	default:
	}
	timer := time.NewTimer(poolWait)
	defer timer.Stop()
	select {
	case s := <-c.idle:
		return s, nil
	case c.open <- struct{}{}:
		s, err := c.p.OpenSession(c.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			<-c.open
			return 0, err
		}
		return s, nil
	case <-timer.C:
		return 0, fmt.Errorf("no free session after %s (raise the session limit?)", poolWait)
	}
}

// put gives a session back; one that failed in a way that may have broken
// it is closed instead.
func (c *conn) put(s p11.SessionHandle, err error) {
	if err != nil && gone(err) {
		_ = c.p.CloseSession(s)
		<-c.open
		return
	}
	c.idle <- s
}

// withSession runs fn with a session from the pool.
func (c *conn) withSession(fn func(s p11.SessionHandle) error) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	err = fn(s)
	c.put(s, err)
	return err
}

// find gives the handles of the objects matching tmpl.
func (c *conn) find(s p11.SessionHandle, tmpl []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := c.p.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	hs, _, err := c.p.FindObjects(s, 16)
	if ferr := c.p.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	return hs, err
}

// generateRSA makes an RSA key pair through crypto11.
func (c *conn) generateRSA(bits int, label string, id []byte) (crypto.PublicKey, error) {
	pub, priv := crypto11.NewAttributeSet(), crypto11.NewAttributeSet()
	for _, a := range []struct {
		set crypto11.AttributeSet
		typ uint
		val any
	}{
		{pub, p11.CKA_LABEL, label}, {pub, p11.CKA_ID, id}, {pub, p11.CKA_ENCRYPT, false},
		{pub, p11.CKA_VERIFY, true},
		{priv, p11.CKA_LABEL, label}, {priv, p11.CKA_ID, id}, {priv, p11.CKA_PRIVATE, true},
		{priv, p11.CKA_SENSITIVE, true}, {priv, p11.CKA_EXTRACTABLE, false},
		{priv, p11.CKA_SIGN, true}, {priv, p11.CKA_DECRYPT, false},
	} {
		if err := a.set.Set(a.typ, a.val); err != nil {
			return nil, err
		}
	}
	k, err := c.c11.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.rsa[Object{Label: label, ID: hex.EncodeToString(id)}] = k
	c.mu.Unlock()
	return k.Public(), nil
}

// rsaKey finds the RSA key pair o through crypto11, once per connection.
func (c *conn) rsaKey(o Object) (crypto11.Signer, error) {
	c.mu.Lock()
	k := c.rsa[o]
	c.mu.Unlock()
	if k != nil {
		return k, nil
	}
	id, err := hex.DecodeString(o.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: bad object ID %q", ErrKeyNotFound, o.ID)
	}
	ks, err := c.c11.FindRSAKeyPairs(id, []byte(o.Label))
	if err != nil {
		return nil, err
	}
	if len(ks) != 1 {
		return nil, fmt.Errorf("%w: %d RSA key pairs labelled %q with ID %s", ErrKeyNotFound, len(ks), o.Label, o.ID)
	}
	if _, ok := ks[0].Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: key %q is not RSA", ErrKeyNotFound, o.Label)
	}
	c.mu.Lock()
	c.rsa[o] = ks[0]
	c.mu.Unlock()
	return ks[0], nil
}

// destroy deletes every object labelled o.Label with ID id: both halves of
// the pair.
func (c *conn) destroy(o Object, id []byte) error {
	err := c.withSession(func(s p11.SessionHandle) error {
		hs, err := c.find(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_LABEL, o.Label), p11.NewAttribute(p11.CKA_ID, id),
		})
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%w: no object labelled %q with ID %s", ErrKeyNotFound, o.Label, o.ID)
		}
		for _, h := range hs {
			if err := c.p.DestroyObject(s, h); err != nil {
				return err
			}
		}
		return nil
	})
	c.mu.Lock()
	delete(c.rsa, o)
	delete(c.ed, o)
	c.mu.Unlock()
	return err
}

// isCode reports whether err is the PKCS#11 return value code.
func isCode(err error, code p11.Error) bool {
	var e p11.Error
	return errors.As(err, &e) && e == code
}

// gone reports whether err means the session, the login or the token is
// lost, so that the connection should be made anew. Errors of our own and
// errors about the request itself leave it be.
func gone(err error) bool {
	if errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrUnsupported) {
		return false
	}
	var e p11.Error
	if !errors.As(err, &e) {
		return true // crypto11's "context is closed", a lost module
	}
	switch e {
	case p11.CKR_ARGUMENTS_BAD, p11.CKR_DATA_LEN_RANGE, p11.CKR_DATA_INVALID,
		p11.CKR_MECHANISM_INVALID, p11.CKR_MECHANISM_PARAM_INVALID, p11.CKR_KEY_TYPE_INCONSISTENT,
		p11.CKR_KEY_FUNCTION_NOT_PERMITTED, p11.CKR_TEMPLATE_INCOMPLETE, p11.CKR_TEMPLATE_INCONSISTENT,
		p11.CKR_ATTRIBUTE_VALUE_INVALID, p11.CKR_ATTRIBUTE_TYPE_INVALID, p11.CKR_ATTRIBUTE_SENSITIVE,
		p11.CKR_DEVICE_MEMORY, p11.CKR_HOST_MEMORY:
		return false
	}
	return true
}

// codeName gives a return value's name as the standard writes it.
func codeName(e p11.Error) string {
	s := e.Error() // "pkcs11: 0xA0: CKR_PIN_INCORRECT"
	if i := lastColon(s); i >= 0 {
		return s[i+2:]
	}
	return s
}

func lastColon(s string) int {
	for i := len(s) - 2; i >= 0; i-- {
		if s[i] == ':' && s[i+1] == ' ' {
			return i
		}
	}
	return -1
}
