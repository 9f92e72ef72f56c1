// Package keys generates DKIM key pairs, reads and writes them as PKCS#8 PEM,
// and seals private keys for storage at rest.
//
// It hands out keys as crypto.Signer so that callers (the dkim package above
// all) never need to know where a key lives: in Go's memory, or, for RSA,
// in the system's libcrypto (LoadOpenSSL), which signs two to three times
// faster on x86-64. Keys that live in a PKCS#11 token (an HSM) are the
// subpackage pkcs11's. It must not import the store,
// web, relay or cli packages.
package keys
