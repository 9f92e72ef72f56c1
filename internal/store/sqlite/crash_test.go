package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

const (
	crashEnvDB  = "DKIMD_TEST_CRASH_DB"
	crashEnvKey = "DKIMD_TEST_CRASH_MASTER"
	crashDomain = "crash.example"
	// crashReady is the line the child prints when its loop starts.
	crashReady = "crash child ready"
)

// TestCrashSafety kills a process that generates and stores keys in a loop
// with SIGKILL at random moments, then checks that what it left is whole:
// the database passes its integrity check, every key has a sealed private
// key that opens for its row and matches its public key, and no sealed key
// lacks its row (issue 3: "a process killed during key generate leaves
// nothing half-written").
func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashEnvDB) != "" {
		crashChild(t)
		return
	}
	if testing.Short() {
		t.Skip("kills subprocesses; skipped in -short mode")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dkimd.db")
	// The child gets the master key through the environment, as a
	// deployment may give it.
	raw := make([]byte, keys.MasterKeySize)
	if _, err := cryptorand.Read(raw); err != nil {
		t.Fatal(err)
	}
	mkText := base64.StdEncoding.EncodeToString(raw)
	mk, err := keys.ParseMasterKey([]byte(mkText))
	if err != nil {
		t.Fatal(err)
	}
	db := openTest(t, path)
	if _, err := db.AddDomain(ctx, store.Domain{Name: crashDomain}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	const rounds = 10
	prev := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDB+"="+path, crashEnvKey+"="+mkText, fmt.Sprintf("DKIMD_TEST_CRASH_ROUND=%d", round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until it has made its key pool and opened the database (slow
		// under the race detector on a loaded machine: a fixed sleep killed
		// it before its first key), then kill it at a random moment of its
		// loop.
		ready := make(chan bool, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			ready <- line == crashReady+"\n"
			io.Copy(io.Discard, out)
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child did not start its loop:\n%s", round, stderr.String())
			}
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child not ready after 2 minutes:\n%s", round, stderr.String())
		}
		time.Sleep(time.Duration(20+rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v), not by SIGKILL:\n%s", round, err, stderr.String())
		}

		n := verifyCrashDB(t, path, mk)
		t.Logf("round %d: %d keys after kill", round, n)
		if n < prev {
			t.Fatalf("round %d: %d keys, fewer than the %d committed before", round, n, prev)
		}
		prev = n
	}
	if prev == 0 {
		t.Fatal("the child never stored a key: the test proved nothing")
	}
}

// verifyCrashDB opens the database after a kill and checks every key.
func verifyCrashDB(t *testing.T, path string, mk *keys.MasterKey) int {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.Check(ctx); err != nil {
		t.Fatalf("after kill: %v", err)
	}
	ks, err := db.ListKeys(ctx, store.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		sealed, err := db.SealedKey(ctx, k.ID)
		if err != nil {
			t.Fatalf("key %d (%s): %v", k.ID, k.Selector, err)
		}
		signer, err := mk.OpenSigner(sealed, k.AssociatedData())
		if err != nil {
			t.Fatalf("key %d (%s): secret does not open: %v", k.ID, k.Selector, err)
		}
		pub, err := publicBytes(signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pub, k.PublicKey) {
			t.Fatalf("key %d (%s): private key does not match the stored public key", k.ID, k.Selector)
		}
	}
	var secrets int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM dkim_key_secrets`).Scan(&secrets); err != nil {
		t.Fatal(err)
	}
	if secrets != len(ks) {
		t.Fatalf("%d sealed keys for %d keys", secrets, len(ks))
	}
	return len(ks)
}

func publicBytes(pub any) ([]byte, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return p, nil
	case *rsa.PublicKey:
		return x509.MarshalPKIXPublicKey(p)
	}
	return nil, fmt.Errorf("unexpected public key %T", pub)
}

// crashChild stores keys until it is killed. The key pairs come from a
// small pool made up front, so that the loop spends its time in the
// database, where a kill must not leave anything half-written.
func crashChild(t *testing.T) {
	ctx := context.Background()
	mk, err := keys.MasterKeyFromEnv(crashEnvKey)
	if err != nil {
		t.Fatal(err)
	}
	var pool []crypto.Signer
	for i := range 4 {
		spec := keys.Spec{Algorithm: keys.Ed25519}
		if i == 0 {
			spec = keys.Spec{Algorithm: keys.RSA, Bits: 1024}
		}
		k, err := keys.Generate(nil, spec)
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, k)
	}
	db, err := Open(ctx, os.Getenv(crashEnvDB), Options{})
	if err != nil {
		t.Fatal(err)
	}
	round := os.Getenv("DKIMD_TEST_CRASH_ROUND")
	fmt.Println(crashReady)
	for i := 0; ; i++ {
		signer := pool[i%len(pool)]
		sel := fmt.Sprintf("r%s-%d", round, i)
		pub, err := publicBytes(signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		spec, err := keys.SpecOf(signer)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := mk.SealSigner(signer, store.KeyAssociatedData(crashDomain, sel))
		if err != nil {
			t.Fatal(err)
		}
		k, err := db.CreateKey(ctx, store.NewKey{Domain: crashDomain, Selector: sel, Algorithm: spec.Algorithm,
			Bits: spec.Bits, PublicKey: pub, Sealed: sealed})
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if _, err := db.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
				t.Fatal(err)
			}
			if _, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "crash", Action: "key.create", Domain: crashDomain}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
