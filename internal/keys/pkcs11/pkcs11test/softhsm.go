package pkcs11test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/peertest"
)

// Module is where Debian's softhsm2 package installs the PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Util is SoftHSM's token tool.
const Util = "softhsm2-util"

// SoftHSM reads its configuration file, named by $SOFTHSM2_CONF, once per
// process when the module is initialised, so every token of a test process
// lives under one token directory made on first use. This is the one piece
// of process-wide state, because the environment variable is one too.
var (
	setup    sync.Once
	tokenDir string
	setupErr error
	mu       sync.Mutex // serialises softhsm2-util runs: they share the directory
)

// Token makes a new token with a random PIN in the process's SoftHSM and
// gives its configuration. Make every token a test needs before the first
// token is opened: SoftHSM lists tokens made after its module was
// initialised only once every Token using it is closed. The token is
// deleted when the test ends.
func Token(t testing.TB) pkcs11.Config {
	t.Helper()
	if _, err := os.Stat(Module); err != nil {
		peertest.Unavailable(t, "SoftHSM not found: %s is missing: apt-get install softhsm2", Module)
	}
	if _, err := exec.LookPath(Util); err != nil {
		peertest.Unavailable(t, "SoftHSM not found: %s is not on PATH: apt-get install softhsm2", Util)
	}
	setup.Do(func() {
		tokenDir, setupErr = os.MkdirTemp("", "dkimd-softhsm-")
		if setupErr != nil {
			return
		}
		conf := filepath.Join(tokenDir, "softhsm2.conf")
		tokens := filepath.Join(tokenDir, "tokens")
		if setupErr = os.Mkdir(tokens, 0o700); setupErr != nil {
			return
		}
		setupErr = os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600)
		if setupErr == nil {
			setupErr = os.Setenv("SOFTHSM2_CONF", conf)
		}
	})
	if setupErr != nil {
		t.Fatalf("pkcs11test: SoftHSM configuration: %v", setupErr)
	}
	label := "dkimd-test-" + random(4)
	pin := random(8)
	mu.Lock()
	defer mu.Unlock()
	before := tokenDirs(t)
	out, err := exec.Command(Util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", random(8)).CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11test: %s --init-token: %v: %s", Util, err, out)
	}
	var dir string
	for _, d := range tokenDirs(t) {
		if !slices.Contains(before, d) {
			dir = d
		}
	}
	if dir == "" {
		t.Fatalf("pkcs11test: %s made no token directory: %s", Util, out)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return pkcs11.Config{Module: Module, Token: label, PIN: pin}
}

// Remove deletes the files of the token labelled label, as pulling a
// token out of its reader would lose it.
func Remove(t testing.TB, label string) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for _, d := range tokenDirs(t) {
		cmd := exec.Command(Util, "--show-slots")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs11test: %s --show-slots: %v: %s", Util, err, out)
		}
		// A token directory is named by a UUID whose last 16 hex digits
		// are the token's serial number.
		serial := strings.ReplaceAll(filepath.Base(d), "-", "")
		serial = serial[len(serial)-16:]
		if tokenHasLabel(string(out), serial, label) {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("pkcs11test: no token labelled %q", label)
}

// tokenHasLabel finds, in softhsm2-util --show-slots output, whether the
// token with that serial number has that label.
func tokenHasLabel(out, serial, label string) bool {
	var cur string
	for line := range strings.SplitSeq(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Serial number":
			cur = v
		case "Label":
			if cur == serial && v == label {
				return true
			}
		}
	}
	return false
}

func tokenDirs(t testing.TB) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(tokenDir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, filepath.Join(tokenDir, "tokens", e.Name()))
	}
	return out
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// Finalize finalises the SoftHSM module of this process behind the back of
// everything using it (C_Finalize through a handle of its own), as a
// crashed or reset HSM client library would: every session and login is
// lost until the module is initialised again.
func Finalize(t testing.TB) {
	t.Helper()
	finalize(t)
}
