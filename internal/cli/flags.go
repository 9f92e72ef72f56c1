package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/keys"
)

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, e *Env) *flag.FlagSet {
	fs := flag.NewFlagSet("dkimd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses flags that may come before, between or after positional
// arguments, and returns the positional ones. "-h" prints the flags.
func parseFlags(fs *flag.FlagSet, e *Env, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printFlags(e.Stdout, fs)
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printFlags prints a command's flags the way flag.PrintDefaults does, but
// with each default once and in the form a user types: a usage text that
// already says its default ("(default 7d)", "default: the host name") gets
// no second one, and durations read "1h", "30s", not "1h0m0s".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if def := typedDefault(f); def != "" && !strings.Contains(usage, "default") {
			line += " (default " + def + ")"
		}
		fmt.Fprintln(w, line)
	})
}

// typedDefault gives a flag's default as a user would type it, or "" when
// it is the zero value (which goes unsaid).
func typedDefault(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		if d, ok := g.Get().(time.Duration); ok {
			if d == 0 {
				return ""
			}
			return shortDuration(d)
		}
	}
	switch f.DefValue {
	case "", "0", "false":
		return ""
	}
	return f.DefValue
}

// shortDuration writes d as time.ParseDuration reads it, without zero
// parts: 1h, 1h30m, 30s, 500ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// errHelp ends a command after printing its flags (exit 0).
var errHelp = errors.New("help")

// listFlag collects every use of a repeatable flag, in order.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// networkLimitFlag is serve's --max-user-network: "24,48" (or "/24,/48"),
// the widest IPv4 and IPv6 networks a domain admin may give a user.
type networkLimitFlag admin.NetworkLimit

func (l *networkLimitFlag) String() string { return admin.NetworkLimit(*l).String() }

func (l *networkLimitFlag) Set(v string) error {
	v4, v6, ok := strings.Cut(v, ",")
	if !ok {
		return fmt.Errorf("%q: want IPv4,IPv6 prefix lengths, e.g. 24,48", v)
	}
	parse := func(s string, max int) (int, error) {
		s = strings.TrimPrefix(strings.TrimSpace(s), "/")
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > max {
			return 0, fmt.Errorf("%q: want a prefix length from 1 to %d", s, max)
		}
		return n, nil
	}
	var err error
	if l.IPv4Bits, err = parse(v4, 32); err != nil {
		return err
	}
	l.IPv6Bits, err = parse(v6, 128)
	return err
}

// requireFlags returns a usage error naming the first empty required flag.
func requireFlags(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return usagef("--%s is required", pairs[i])
		}
	}
	return nil
}

// openSSLMode is an --openssl flag: whether RSA signs through the system's
// OpenSSL (keys.LoadOpenSSL) or Go's crypto/rsa.
type openSSLMode string

func openSSLFlag(fs *flag.FlagSet) *openSSLMode {
	m := openSSLMode("auto")
	fs.Var(&m, "openssl", "RSA signing through the system's OpenSSL: auto (when libcrypto.so.3 loads), on (required) or off (Go's crypto/rsa)")
	return &m
}

func (m *openSSLMode) String() string { return string(*m) }

func (m *openSSLMode) Set(v string) error {
	switch v {
	case "auto", "on", "off":
		*m = openSSLMode(v)
		return nil
	}
	return fmt.Errorf("want auto, on or off")
}

// load gives the library to sign RSA with (nil: Go's) and its name, or an
// error when --openssl on cannot be honoured.
func (m *openSSLMode) load() (*keys.OpenSSL, string, error) {
	const goRSA = "go crypto/rsa"
	if *m == "off" {
		return nil, goRSA, nil
	}
	lib, err := keys.LoadOpenSSL()
	if err != nil {
		if *m == "on" {
			return nil, "", fmt.Errorf("--openssl on: %w", err)
		}
		return nil, fmt.Sprintf("%s (%v)", goRSA, err), nil
	}
	return lib, lib.Version(), nil
}
