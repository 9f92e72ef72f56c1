//go:build cgo

package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/keys/pkcs11"
	"github.com/dkimd/dkimd/internal/keys/pkcs11/pkcs11test"
	"github.com/dkimd/dkimd/internal/logtest"
	"github.com/dkimd/dkimd/internal/peertest"
)

// runEnvStdin calls Main with the environment env (DKIMD_DATA and the PIN).
func runEnvStdin(env map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := Main(context.Background(), append([]string{"dkimd"}, args...), e)
	return code, out.String(), errb.String()
}

// hsmCLI runs commands on a data directory with a SoftHSM token named on
// every command line and its PIN in the environment.
type hsmCLI struct {
	t   *testing.T
	cfg pkcs11.Config
	env map[string]string
}

func newHSMCLI(t *testing.T) *hsmCLI {
	cfg := pkcs11test.Token(t)
	return &hsmCLI{t: t, cfg: cfg, env: map[string]string{"DKIMD_DATA": filepath.Join(t.TempDir(), "data"), PKCS11PINEnv: cfg.PIN}}
}

func (h *hsmCLI) flags() []string {
	return []string{"--pkcs11-module", h.cfg.Module, "--pkcs11-token", h.cfg.Token}
}

func (h *hsmCLI) ok(args ...string) string {
	h.t.Helper()
	code, out, errs := runEnvStdin(h.env, "", args...)
	if code != 0 {
		h.t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

func (h *hsmCLI) fails(code int, want string, args ...string) string {
	h.t.Helper()
	c, _, errs := runEnvStdin(h.env, "", args...)
	if c != code || !strings.Contains(errs, want) {
		h.t.Errorf("%v: exit %d %q, want %d and %q", args, c, errs, code, want)
	}
	return errs
}

// The key commands with a PKCS#11 token: generate in the token (PIN from
// the environment or a file), list where each key lives, revoke and
// destroy; clear errors for a missing token, a wrong PIN, half a
// configuration.
func TestKeyCommandsPKCS11(t *testing.T) {
	h := newHSMCLI(t)
	h.ok("domain", "add", "example.com")
	out := h.ok(append([]string{"key", "generate", "--domain", "example.com", "--selector", "hsm", "--backend", "pkcs11"}, h.flags()...)...)
	if !strings.Contains(out, `PKCS#11 token "`+h.cfg.Token+`"`) || !strings.Contains(out, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("key generate --backend pkcs11:\n%s", out)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(h.cfg.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(h.env, PKCS11PINEnv)
	h.ok(append([]string{"key", "generate", "--domain", "example.com", "--selector", "edhsm", "--algorithm", "ed25519", "--backend", "pkcs11", "--pkcs11-pin-file", pinFile}, h.flags()...)...)
	h.ok("key", "generate", "--domain", "example.com", "--selector", "plain", "--algorithm", "ed25519")

	out = h.ok("key", "list")
	for _, want := range []string{
		"LOCATION",
		`PKCS#11 token "` + h.cfg.Token + `", object "dkimd hsm._domainkey.example.com"`,
		`PKCS#11 token "` + h.cfg.Token + `", object "dkimd edhsm._domainkey.example.com"`,
		"sealed in the database",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("key list lacks %q:\n%s", want, out)
		}
	}
	var listed []struct {
		Selector string
		Location struct {
			Backend, Token, Label string
			ObjectID              string `json:"object_id"`
		}
	}
	if err := json.Unmarshal([]byte(h.ok("key", "list", "--json")), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("key list --json: %v %+v", err, listed)
	}
	if l := listed[0].Location; l.Backend != "pkcs11" || l.Token != h.cfg.Token || l.ObjectID == "" {
		t.Fatalf("JSON location of %s: %+v", listed[0].Selector, l)
	}
	if listed[2].Location.Backend != "sealed" {
		t.Fatalf("JSON location of %s: %+v", listed[2].Selector, listed[2].Location)
	}

	h.fails(1, "No PKCS#11 token is configured", "key", "generate", "--domain", "example.com", "--selector", "x", "--backend", "pkcs11")
	h.fails(2, "--pkcs11-module and --pkcs11-token go together", "key", "list", "--pkcs11-module", h.cfg.Module)
	h.fails(2, "--backend", "key", "generate", "--domain", "example.com", "--selector", "x", "--backend", "kms")
	h.env[PKCS11PINEnv] = "not-the-pin"
	errs := h.fails(1, "refused the PIN", append([]string{"key", "generate", "--domain", "example.com", "--selector", "x", "--backend", "pkcs11"}, h.flags()...)...)
	if strings.Contains(errs, "not-the-pin") {
		t.Errorf("the PIN reached the error: %s", errs)
	}
	h.fails(1, "no token labelled", "key", "generate", "--domain", "example.com", "--selector", "x", "--backend", "pkcs11",
		"--pkcs11-module", h.cfg.Module, "--pkcs11-token", "absent-token")
	h.env[PKCS11PINEnv] = h.cfg.PIN

	// Rotation makes the new key where the old one lives.
	h.ok("key", "activate", "--domain", "example.com", "--selector", "hsm", "--force")
	out = h.ok(append([]string{"key", "rotate", "--domain", "example.com", "--replaces", "hsm", "--selector", "hsm-next"}, h.flags()...)...)
	if !strings.Contains(out, `(PKCS#11 token "`+h.cfg.Token+`", object "dkimd hsm-next._domainkey.example.com")`) {
		t.Fatalf("key rotate of a token key:\n%s", out)
	}

	// Revoke and destroy: the token no longer holds the key.
	out = h.ok(append([]string{"key", "revoke", "--domain", "example.com", "--selector", "hsm", "--force", "--destroy"}, h.flags()...)...)
	if !strings.Contains(out, "deleted from PKCS#11 token") || !strings.Contains(out, "p=") {
		t.Fatalf("key revoke --destroy:\n%s", out)
	}
	h.ok("key", "revoke", "--domain", "example.com", "--selector", "edhsm", "--force")
	out = h.ok(append([]string{"key", "revoke", "--domain", "example.com", "--selector", "edhsm", "--destroy"}, h.flags()...)...)
	if !strings.Contains(out, "deleted from PKCS#11 token") {
		t.Fatalf("key revoke --destroy of a revoked key:\n%s", out)
	}
	h.fails(1, "sealed in the database", "key", "revoke", "--domain", "example.com", "--selector", "plain", "--force", "--destroy")
	tok, err := pkcs11.Open(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	for i, alg := range []keys.Algorithm{keys.RSA, keys.Ed25519} {
		o := pkcs11.Object{Label: listed[i].Location.Label, ID: listed[i].Location.ObjectID}
		if _, err := tok.Signer(alg, o); !errors.Is(err, pkcs11.ErrKeyNotFound) {
			t.Errorf("key %s still in the token after --destroy: %v", listed[i].Selector, err)
		}
	}
}

// startTokenServe runs dkimd serve with a submission port and a smart host; it
// gives the submission address and the log, and stops serve at the end.
func startTokenServe(t *testing.T, env map[string]string, extra ...string) (subAddr string, logs *logtest.Buffer, sink *deliverytest.Sink) {
	t.Helper()
	sink = deliverytest.NewSink(t, deliverytest.SinkOptions{})
	logs = &logtest.Buffer{}
	addrs, _ := startServeEnv(t, logs, env, append([]string{"--listen-http", "127.0.0.1:0",
		"--listen-submission", "127.0.0.1:0", "--listen-submissions", "", "--listen-relay", "",
		"--hostname", "mail.test", "--smarthost", sink.Addr, "--smarthost-tls", "none"}, extra...)...)
	return addrs["submission"], logs, sink
}

// send submits one message as alice and gives the server's refusal, if any.
func send(addr, id string) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "a long enough password")); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: signed in the token " + id + "\r\n" +
		"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@example.com>\r\n\r\nHello Bob, message " + id + ".\r\n"
	return c.SendMail("alice@example.com", []string{"bob@example.net"}, strings.NewReader(msg))
}

// want451 checks that err is the temporary refusal a failing token gives:
// 451 4.3.0, so that the client keeps the message and tries again.
func want451(t *testing.T, what string, err error) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
		t.Fatalf("%s: %v, want 451 4.3.0", what, err)
	}
}

// The relay signs with keys that live in the token, RSA and Ed25519 on one
// message, from many connections at once; dkimpy and OpenDKIM verify every
// signature against the records dkimd printed. A wrong PIN, and then a
// token that disappears, make the relay answer 451: never unsigned mail.
func TestServeSignsWithTokenKeys(t *testing.T) {
	py := peertest.Dkimpy(t)
	od := peertest.OpenDKIM(t)
	h := newHSMCLI(t)
	h.ok("domain", "add", "example.com")
	records := map[string]string{}
	for _, k := range []struct{ sel, alg string }{{"hsmrsa", "rsa"}, {"hsmed", "ed25519"}} {
		h.ok(append([]string{"key", "generate", "--domain", "example.com", "--selector", k.sel, "--algorithm", k.alg, "--backend", "pkcs11"}, h.flags()...)...)
		h.ok("key", "activate", "--domain", "example.com", "--selector", k.sel, "--force")
		records[k.sel+"._domainkey.example.com"] = strings.TrimSpace(h.ok("key", "record", "--domain", "example.com", "--selector", k.sel, "--format", "value"))
	}
	if code, _, errs := runEnvStdin(h.env, "a long enough password\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin"); code != 0 {
		t.Fatal(errs)
	}

	t.Run("wrong PIN", func(t *testing.T) {
		env := map[string]string{"DKIMD_DATA": h.env["DKIMD_DATA"], PKCS11PINEnv: "wrong-pin-0000"}
		sub, logs, sink := startTokenServe(t, env, h.flags()...)
		want451(t, "message with the token's PIN refused", send(sub, "wrongpin"))
		if !strings.Contains(logs.String(), "pkcs11_token_unavailable") || !strings.Contains(logs.String(), "refused the PIN") {
			t.Errorf("log does not say why:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "wrong-pin-0000") {
			t.Error("the PIN reached the log")
		}
		if n := len(sink.Delivered()); n != 0 {
			t.Errorf("%d messages delivered", n)
		}
	})

	sub, logs, sink := startTokenServe(t, h.env, h.flags()...)
	const conns, perConn = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, conns*perConn)
	for i := range conns {
		wg.Go(func() {
			for j := range perConn {
				if err := send(sub, fmt.Sprintf("m%d-%d", i, j)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
	var got []deliverytest.Received
	for deadline := time.Now().Add(30 * time.Second); len(got) < conns*perConn && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = sink.Delivered()
	}
	if len(got) != conns*perConn {
		t.Fatalf("delivered %d messages, want %d\n%s", len(got), conns*perConn, logs.String())
	}
	var msgs [][]byte
	for _, m := range got {
		msgs = append(msgs, m.Data)
	}
	for i, v := range py.VerifyAll(msgs, records) {
		if len(v.Sigs) != 2 {
			t.Fatalf("message %d: %d signatures, want RSA and Ed25519: %s", i, len(v.Sigs), v)
		}
		r, _ := v.BySelector("hsmrsa")
		e, _ := v.BySelector("hsmed")
		if !r.Pass || (py.Ed25519 && !e.Pass) {
			t.Fatalf("dkimpy, message %d: %s", i, v)
		}
	}
	for i, v := range od.Verify(msgs, records) {
		r, _ := v.BySelector("hsmrsa")
		e, _ := v.BySelector("hsmed")
		if !r.Pass || (od.Supports("ed25519-sha256") && !e.Pass) {
			t.Fatalf("OpenDKIM, message %d: %s", i, v)
		}
	}

	// The token goes away: mail that should be signed is refused for now.
	pkcs11test.Remove(t, h.cfg.Token)
	for i := range 2 {
		want451(t, fmt.Sprintf("message %d after the token is gone", i), send(sub, fmt.Sprintf("gone%d", i)))
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.Delivered()); n != conns*perConn {
		t.Errorf("%d messages delivered after the token went, want none more", n-conns*perConn)
	}
	if !strings.Contains(logs.String(), "token unavailable") || !strings.Contains(logs.String(), h.cfg.Token) {
		t.Errorf("log does not say the token failed:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), h.cfg.PIN) {
		t.Error("the PIN reached the log")
	}
	t.Logf("dkimpy Ed25519: %v, OpenDKIM ed25519-sha256: %v", py.Ed25519, od.Supports("ed25519-sha256"))
	if testing.Verbose() {
		t.Log(logs.String())
	}
}
