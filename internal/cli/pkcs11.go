package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/store"
)

// PKCS11PINEnv names the environment variable the PKCS#11 user PIN may
// come from. The PIN is never a flag: command lines are visible to every
// user of the machine (ps, /proc).
const PKCS11PINEnv = "DKIMD_PKCS11_PIN"

// pkcs11Flags configure the PKCS#11 token keys may live in; serve and the
// commands on the data directory take them alike.
type pkcs11Flags struct {
	module, token, pinFile *string
	sessions               *int
}

func addPKCS11Flags(fs *flag.FlagSet) pkcs11Flags {
	return pkcs11Flags{
		module:   fs.String("pkcs11-module", "", "PKCS#11 module (library) of the token keys may live in, such as /usr/lib/softhsm/libsofthsm2.so"),
		token:    fs.String("pkcs11-token", "", "label of the PKCS#11 token"),
		pinFile:  fs.String("pkcs11-pin-file", "", "file holding the token's user PIN (default $"+PKCS11PINEnv+")"),
		sessions: fs.Int("pkcs11-sessions", pkcs11.DefaultMaxSessions, "PKCS#11 sessions open at most: signatures made at once"),
	}
}

// open gives the token the flags name, not yet connected, or nil when none
// is named (or the flags were never added: the zero pkcs11Flags). Built
// without cgo, naming one is an error that says so.
func (f pkcs11Flags) open(e *Env) (*pkcs11.Token, error) {
	if f.module == nil || f.token == nil || (*f.module == "" && *f.token == "") {
		return nil, nil
	}
	if *f.module == "" || *f.token == "" {
		return nil, usagef("--pkcs11-module and --pkcs11-token go together")
	}
	pin, err := f.pin(e)
	if err != nil {
		return nil, err
	}
	return pkcs11.New(pkcs11.Config{Module: *f.module, Token: *f.token, PIN: pin, MaxSessions: *f.sessions})
}

// pin reads the PIN from --pkcs11-pin-file or the environment.
func (f pkcs11Flags) pin(e *Env) (string, error) {
	if *f.pinFile == "" {
		return e.getenv(PKCS11PINEnv), nil
	}
	b, err := os.ReadFile(*f.pinFile)
	if err != nil {
		// The path, never the content.
		return "", fmt.Errorf("--pkcs11-pin-file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// backendFlag is --backend of key generate and rotate.
func backendFlag(fs *flag.FlagSet, def string, usage string) *string {
	return fs.String("backend", def, usage)
}

// parseBackend checks a --backend value; "" stays "" (the default).
func parseBackend(s string) (store.KeyBackend, error) {
	switch b := store.KeyBackend(strings.ToLower(strings.TrimSpace(s))); b {
	case "", store.BackendSealed, store.BackendPKCS11:
		return b, nil
	}
	return "", usagef("--backend %q: want %s (in the database) or %s (in the token)", s, store.BackendSealed, store.BackendPKCS11)
}
