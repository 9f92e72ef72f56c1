package cli

import (
	"bufio"
	"context"
	"crypto"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

func runSign(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("sign", e)
	var keyFiles, selectors, domains listFlag
	fs.Var(&keyFiles, "key", "private key file (PEM); repeat with --selector for several signatures")
	fs.Var(&selectors, "selector", "selector of the --key at the same position")
	fs.Var(&domains, "domain", "signing domain (d=); once for all keys, or once per key")
	expire := fs.Duration("expire", 0, "add x= this long after signing, e.g. 120h (default: no x=)")
	headers := fs.String("headers", "", "comma-separated header fields to sign (default: the standard set)")
	oversign := fs.String("oversign", "default", "fields to list once more than they occur: default, from-only, none, or comma-separated names")
	canon := fs.String("canonicalization", "relaxed/relaxed", "header/body canonicalization: relaxed or simple")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if len(keyFiles) == 0 {
		return usagef("--key is required")
	}
	if len(selectors) != len(keyFiles) {
		return usagef("give one --selector per --key (%d keys, %d selectors)", len(keyFiles), len(selectors))
	}
	if len(domains) != 1 && len(domains) != len(keyFiles) {
		return usagef("give --domain once, or once per --key")
	}
	over, err := store.NormalizeOversign(*oversign)
	if err != nil {
		return usagef("--oversign: %v", err)
	}
	opts := &dkim.SignOptions{Expiration: *expire, Oversign: store.OversignFields(over)}
	if *headers != "" {
		opts.HeaderKeys = splitList(*headers)
	}
	hc, bc, ok := strings.Cut(*canon, "/")
	if !ok {
		bc = "simple"
	}
	opts.HeaderCanon, opts.BodyCanon = dkim.Canonicalization(hc), dkim.Canonicalization(bc)
	for i, f := range keyFiles {
		d := domains[0]
		if len(domains) > 1 {
			d = domains[i]
		}
		d, sel, err := checkNames(d, selectors[i])
		if err != nil {
			return err
		}
		k, err := keys.ReadFile(f)
		if err != nil {
			return err
		}
		opts.Keys = append(opts.Keys, dkim.SignKey{Domain: d, Selector: sel, Signer: k})
	}
	signer, err := dkim.NewSigner(opts)
	if err != nil {
		return usagef("%v", err)
	}
	// The signatures go on top, so the message is kept in a temporary file
	// while it streams through the signer: memory stays flat, and nothing is
	// printed unless signing succeeds.
	spool, err := os.CreateTemp("", "dkimd-sign-*")
	if err != nil {
		return err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	le := &lineEnding{}
	if _, err := io.Copy(io.MultiWriter(spool, signer, le), e.Stdin); err != nil {
		return fmt.Errorf("reading message: %w", err)
	}
	if err := signer.Close(); err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w := bufio.NewWriter(e.Stdout)
	for _, s := range signer.Signatures() {
		if !le.crlf {
			s = strings.ReplaceAll(s, "\r\n", "\n")
		}
		w.WriteString(s)
	}
	if _, err := io.Copy(w, spool); err != nil {
		return err
	}
	return w.Flush()
}

// lineEnding notes whether the message's first line ends in CRLF, so that
// the signature fields put on top match the rest of the file.
type lineEnding struct {
	seen, crlf bool
	last       byte
}

func (l *lineEnding) Write(p []byte) (int, error) {
	if !l.seen {
		for _, c := range p {
			if c == '\n' {
				l.seen, l.crlf = true, l.last == '\r'
				break
			}
			l.last = c
		}
	}
	return len(p), nil
}

func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runBench(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 || args[0] != "sign" {
		return usagef("usage: dkimd bench sign [--algorithm rsa|ed25519] [--bits N] [--size BYTES] [--duration D] [--openssl auto|on|off] [--json]")
	}
	fs := newFlags("bench sign", e)
	alg := fs.String("algorithm", "rsa", "rsa, ed25519, or rsa+ed25519 for two signatures per message")
	bits := fs.Int("bits", 2048, "RSA key length")
	size := fs.Int("size", 2048, "message size in bytes")
	duration := fs.Duration("duration", 3*time.Second, "how long to measure")
	asJSON := fs.Bool("json", false, "print JSON")
	openssl := openSSLFlag(fs)
	if _, err := parseFlags(fs, e, args[1:]); err != nil {
		return err
	}
	lib, library, err := openssl.load()
	if err != nil {
		return err
	}
	if *size < 200 || *size > 512<<20 {
		return usagef("--size must be between 200 bytes and 512 MiB")
	}
	if *duration <= 0 || *duration > time.Hour {
		return usagef("--duration must be positive and at most 1h")
	}
	var signers []crypto.Signer
	for _, a := range strings.Split(*alg, "+") {
		algo, err := keys.ParseAlgorithm(a)
		if err != nil {
			return usagef("%v", err)
		}
		spec := keys.Spec{Algorithm: algo}
		if algo == keys.RSA {
			spec.Bits = *bits
		}
		k, err := keys.Generate(nil, spec)
		if err != nil {
			return usagef("%v", err)
		}
		if k, err = lib.Signer(k); err != nil {
			return err
		}
		signers = append(signers, k)
	}
	r, err := benchSign(ctx, signers, *size, *duration)
	if err != nil {
		return err
	}
	r.Algorithm = *alg
	if strings.Contains(*alg, "rsa") {
		r.Bits, r.RSALibrary = *bits, library
	}
	if *asJSON {
		return writeJSON(e.Stdout, r)
	}
	if r.RSALibrary != "" {
		fmt.Fprintf(e.Stdout, "RSA signs with %s\n", r.RSALibrary)
	}
	_, err = fmt.Fprintf(e.Stdout, "%s, %d-byte messages, one core: %.0f messages/s, %.1f MB/s (%d messages in %s)\n"+
		"bare signatures alone, same run: %.0f/s; dkimd reaches %.2f of that\n",
		r.Algorithm, r.Size, r.MessagesPerSecond, r.MBPerSecond, r.Messages, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond),
		r.RawSignPerSecond, r.RawRatio)
	return err
}
