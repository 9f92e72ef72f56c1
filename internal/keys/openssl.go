//go:build cgo && linux

package keys

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

// libcrypto is opened at run time with dlopen, so that building dkimd needs
// no OpenSSL headers and a machine without libcrypto.so.3 still runs it
// (with Go's crypto/rsa). The prototypes below are OpenSSL 3's public ABI,
// stable across 3.x; only opaque pointers cross it.

typedef struct dkimd_pkey dkimd_pkey;
typedef struct dkimd_ctx dkimd_ctx;
typedef struct dkimd_md dkimd_md;

static dkimd_pkey *(*p_d2i_PrivateKey)(int, dkimd_pkey **, const unsigned char **, long);
static void (*p_EVP_PKEY_free)(dkimd_pkey *);
static dkimd_ctx *(*p_EVP_PKEY_CTX_new)(dkimd_pkey *, void *);
static void (*p_EVP_PKEY_CTX_free)(dkimd_ctx *);
static int (*p_EVP_PKEY_sign_init)(dkimd_ctx *);
static int (*p_EVP_PKEY_CTX_set_rsa_padding)(dkimd_ctx *, int);
static int (*p_EVP_PKEY_CTX_set_signature_md)(dkimd_ctx *, const dkimd_md *);
static const dkimd_md *(*p_EVP_sha256)(void);
static int (*p_EVP_PKEY_sign)(dkimd_ctx *, unsigned char *, size_t *, const unsigned char *, size_t);
static unsigned long (*p_ERR_get_error)(void);
static void (*p_ERR_error_string_n)(unsigned long, char *, size_t);
static const char *(*p_OpenSSL_version)(int);

#define DKIMD_EVP_PKEY_RSA 6     // EVP_PKEY_RSA (NID_rsaEncryption)
#define DKIMD_RSA_PKCS1_PADDING 1

// dkimd_load opens libcrypto.so.3 and finds every function; it returns NULL
// or the name of what is missing.
static const char *dkimd_load(void) {
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return "libcrypto.so.3";
#define SYM(name) if ((*(void **)&p_##name = dlsym(h, #name)) == NULL) return #name;
	SYM(d2i_PrivateKey)
	SYM(EVP_PKEY_free)
	SYM(EVP_PKEY_CTX_new)
	SYM(EVP_PKEY_CTX_free)
	SYM(EVP_PKEY_sign_init)
	SYM(EVP_PKEY_CTX_set_rsa_padding)
	SYM(EVP_PKEY_CTX_set_signature_md)
	SYM(EVP_sha256)
	SYM(EVP_PKEY_sign)
	SYM(ERR_get_error)
	SYM(ERR_error_string_n)
	SYM(OpenSSL_version)
#undef SYM
	return NULL;
}

static const char *dkimd_version(void) { return p_OpenSSL_version(0); }

// OpenSSL's error queue is per thread and a goroutine may change threads
// between two cgo calls, so every call that can fail reads and empties the
// queue itself, into err.
static void dkimd_errors(char *err, size_t n) {
	unsigned long e, last = 0;
	while ((e = p_ERR_get_error()) != 0) last = e;
	if (n > 0) err[0] = 0;
	if (last != 0 && n > 0) p_ERR_error_string_n(last, err, n);
}

static dkimd_pkey *dkimd_rsa_key(const unsigned char *der, long n, char *err, size_t errn) {
	const unsigned char *p = der;
	dkimd_pkey *k = p_d2i_PrivateKey(DKIMD_EVP_PKEY_RSA, NULL, &p, n);
	dkimd_errors(err, errn);
	return k;
}

static void dkimd_key_free(dkimd_pkey *k) { p_EVP_PKEY_free(k); }

// dkimd_sign makes an RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2) of a
// SHA-256 digest: the DigestInfo wrapping is OpenSSL's.
static int dkimd_sign(dkimd_pkey *k, const unsigned char *digest, size_t dn,
		unsigned char *sig, size_t *sn, char *err, size_t errn) {
	int ok = 0;
	dkimd_ctx *c = p_EVP_PKEY_CTX_new(k, NULL);
	if (c != NULL
			&& p_EVP_PKEY_sign_init(c) > 0
			&& p_EVP_PKEY_CTX_set_rsa_padding(c, DKIMD_RSA_PKCS1_PADDING) > 0
			&& p_EVP_PKEY_CTX_set_signature_md(c, p_EVP_sha256()) > 0
			&& p_EVP_PKEY_sign(c, sig, sn, digest, dn) > 0)
		ok = 1;
	p_EVP_PKEY_CTX_free(c);
	dkimd_errors(err, errn);
	return ok;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// The library is opened once per process: dlopen and the function pointers
// are process-wide by nature, and never change once set.
var (
	openSSLOnce sync.Once
	openSSL     *OpenSSL
	openSSLErr  error
)

// LoadOpenSSL opens the system's libcrypto (OpenSSL 3) for RSA signing. It
// fails, with ErrNoOpenSSL, when the library cannot be opened; callers then
// sign with Go's crypto/rsa.
func LoadOpenSSL() (*OpenSSL, error) {
	openSSLOnce.Do(func() {
		if missing := C.dkimd_load(); missing != nil {
			openSSLErr = fmt.Errorf("%w: %s not found", ErrNoOpenSSL, C.GoString(missing))
			return
		}
		openSSL = &OpenSSL{version: C.GoString(C.dkimd_version())}
	})
	return openSSL, openSSLErr
}

// opensslRSA is an RSA private key held by libcrypto. It keeps no copy of
// the key on the Go side; libcrypto clears the key's numbers when the
// signer is collected (EVP_PKEY_free).
type opensslRSA struct {
	pub  *rsa.PublicKey
	pkey *C.dkimd_pkey
}

func (o *OpenSSL) rsaSigner(k *rsa.PrivateKey) (crypto.Signer, error) {
	der := x509.MarshalPKCS1PrivateKey(k)
	defer clear(der)
	var errBuf [256]C.char
	pkey := C.dkimd_rsa_key((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)), &errBuf[0], C.size_t(len(errBuf)))
	if pkey == nil {
		return nil, fmt.Errorf("%w: key not taken: %s", ErrNoOpenSSL, C.GoString(&errBuf[0]))
	}
	s := &opensslRSA{pub: &k.PublicKey, pkey: pkey}
	runtime.AddCleanup(s, func(p *C.dkimd_pkey) { C.dkimd_key_free(p) }, pkey)
	return s, nil
}

// Public implements crypto.Signer.
func (s *opensslRSA) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer for RSASSA-PKCS1-v1_5 with SHA-256, the
// only RSA signature DKIM makes (RFC 8301). rand is not used: the signature
// is deterministic, and libcrypto blinds the private operation itself.
func (s *opensslRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss || opts.HashFunc() != crypto.SHA256 {
		return nil, errOpenSSLOpts
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("keys: digest of %d bytes, want %d", len(digest), crypto.SHA256.Size())
	}
	sig := make([]byte, s.pub.Size())
	n := C.size_t(len(sig))
	var errBuf [256]C.char
	ok := C.dkimd_sign(s.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)),
		(*C.uchar)(unsafe.Pointer(&sig[0])), &n, &errBuf[0], C.size_t(len(errBuf)))
	runtime.KeepAlive(s) // the cleanup must not free pkey during the call
	if ok != 1 {
		return nil, fmt.Errorf("%w: %s", errOpenSSLSign, C.GoString(&errBuf[0]))
	}
	if int(n) != len(sig) {
		return nil, fmt.Errorf("%w: %d-byte signature, want %d", errOpenSSLSign, n, len(sig))
	}
	return sig, nil
}

var (
	errOpenSSLOpts = errors.New("keys: the OpenSSL signer makes only RSASSA-PKCS1-v1_5 SHA-256 signatures")
	errOpenSSLSign = errors.New("keys: OpenSSL signing failed")
)
