package peertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing peer from
// a skipped test into a failed one. CI sets it to 1.
const RequireEnv = "DKIMD_REQUIRE_PEERS"

// ErrRefused is a peer declining to sign a message; the error wrapping it
// gives the peer's reason.
var ErrRefused = errors.New("peer refused to sign")

// runTimeout bounds one run of a peer; a batch of a hundred messages takes
// well under a second.
const runTimeout = 2 * time.Minute

// Result is a peer's verdict on one DKIM-Signature field.
type Result struct {
	// Pass reports that the peer accepted the signature.
	Pass bool
	// Domain, Selector and Algorithm are d=, s= and a= as the peer read them.
	Domain, Selector, Algorithm string
	// Reason is the peer's explanation when Pass is false, in its words.
	Reason string
}

// Verdict is a peer's verdict on one message.
type Verdict struct {
	// Sigs has one Result per DKIM-Signature field, top to bottom.
	Sigs []Result
	// Error is set when the peer could not take the message at all.
	Error string
	// Summary is the peer's own one-line account, for test logs.
	Summary string
}

// Pass reports that the message had signatures and all of them passed.
func (v Verdict) Pass() bool {
	if v.Error != "" || len(v.Sigs) == 0 {
		return false
	}
	for _, r := range v.Sigs {
		if !r.Pass {
			return false
		}
	}
	return true
}

// Failed reports that the message had signatures and none of them passed.
func (v Verdict) Failed() bool {
	if v.Error != "" {
		return true
	}
	for _, r := range v.Sigs {
		if r.Pass {
			return false
		}
	}
	return len(v.Sigs) > 0
}

// BySelector returns the result for the signature with s=selector.
func (v Verdict) BySelector(selector string) (Result, bool) {
	for _, r := range v.Sigs {
		if r.Selector == selector {
			return r, true
		}
	}
	return Result{}, false
}

// String renders the verdict on one line for test output.
func (v Verdict) String() string {
	if v.Error != "" {
		return "error: " + v.Error
	}
	if len(v.Sigs) == 0 {
		return "no signatures (" + v.Summary + ")"
	}
	parts := make([]string, len(v.Sigs))
	for i, r := range v.Sigs {
		st := "pass"
		if !r.Pass {
			st = "fail (" + r.Reason + ")"
		}
		parts[i] = fmt.Sprintf("s=%s a=%s: %s", r.Selector, r.Algorithm, st)
	}
	return strings.Join(parts, "; ")
}

// Unavailable skips the test because something it needs is not installed,
// or fails it when RequireEnv is set. The message should say what to
// install.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires every peer)", msg, RequireEnv)
		return
	}
	t.Skip(msg)
}

// run executes a peer command and returns its stdout and stderr. It fails the
// test only when the command cannot be started or is killed by the timeout;
// a non-zero exit is for the caller to judge.
func run(t testing.TB, dir string, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("peertest: %s timed out after %v: %s", name, runTimeout, errb.String())
	}
	if execErr := (*exec.Error)(nil); errors.As(err, &execErr) {
		t.Fatalf("peertest: cannot run %s: %v", name, err)
	}
	return []byte(out.String()), []byte(errb.String()), err
}

// writeFiles writes each message to its own file in a new folder under dir
// and returns the paths, in order.
func writeFiles(t testing.TB, dir string, msgs [][]byte) []string {
	t.Helper()
	sub, err := os.MkdirTemp(dir, "batch-")
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	paths := make([]string, len(msgs))
	for i, m := range msgs {
		// No ":" or "," in the name: OpenDKIM prints "opendkim: NAME: ..."
		// and takes a comma-separated list.
		paths[i] = filepath.Join(sub, fmt.Sprintf("msg%04d.eml", i))
		writeFile(t, paths[i], m, 0o600)
	}
	return paths
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatalf("peertest: %v", err)
	}
}

// Prepend puts header fields (such as the DKIM-Signature fields dkim.Sign
// returns), each given with or without its final line break, on top of msg.
// The fields take the line ends of the message's first line, as an MTA
// writing the message to a file would do: an LF-only message stays LF-only.
func Prepend(msg []byte, fields ...string) []byte {
	eol := "\r\n"
	if i := bytes.IndexByte(msg, '\n'); i >= 0 && (i == 0 || msg[i-1] != '\r') {
		eol = "\n"
	}
	var b bytes.Buffer
	for _, f := range fields {
		f = strings.ReplaceAll(strings.TrimRight(f, "\r\n"), "\r\n", "\n")
		b.WriteString(strings.ReplaceAll(f, "\n", eol))
		b.WriteString(eol)
	}
	b.Write(msg)
	return b.Bytes()
}
