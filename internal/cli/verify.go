package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
)

// verifyLine is one signature's result as "verify --json" prints it.
type verifyLine struct {
	Status    string `json:"status"`
	Domain    string `json:"domain,omitempty"`
	Selector  string `json:"selector,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	KeyBits   int    `json:"key_bits,omitempty"`
	Reason    string `json:"reason"`
}

func runVerify(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("verify", e)
	var txts listFlag
	fs.Var(&txts, "txt", "NAME=FILE: answer the key lookup of NAME with the TXT value in FILE (repeatable)")
	resolver := fs.String("resolver", "", "DNS server HOST:PORT to ask instead of the system resolver")
	authserv := fs.String("authserv-id", "", "also print an Authentication-Results field naming this host")
	timeout := fs.Duration("timeout", 10*time.Second, "DNS lookup timeout")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	static := map[string]string{}
	for _, t := range txts {
		name, file, ok := strings.Cut(t, "=")
		if !ok || name == "" || file == "" {
			return usagef("--txt %q: want NAME=FILE", t)
		}
		value, err := readTXTFile(file)
		if err != nil {
			return err
		}
		static[normalizeName(name)] = value
	}
	var netRes dkim.Resolver = dkim.NetResolver{}
	if *resolver != "" {
		if _, _, err := net.SplitHostPort(*resolver); err != nil {
			return usagef("--resolver %q: want HOST:PORT", *resolver)
		}
		addr := *resolver
		netRes = dkim.NetResolver{Resolver: &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}}
	}
	res := dkim.ResolverFunc(func(ctx context.Context, name string) ([]string, error) {
		if v, ok := static[normalizeName(name)]; ok {
			return []string{v}, nil
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return netRes.LookupTXT(ctx, name)
	})
	results, err := dkim.Verify(ctx, e.Stdin, &dkim.VerifyOptions{Resolver: res})
	if err != nil {
		return err
	}
	lines := make([]verifyLine, 0, len(results))
	allPass := len(results) > 0
	for i := range results {
		r := &results[i]
		l := verifyLine{Status: string(r.Status), Reason: r.Reason(), KeyBits: r.KeyBits}
		if s := r.Signature; s != nil {
			l.Domain, l.Selector, l.Algorithm = s.Domain, s.Selector, s.Algorithm
		}
		lines = append(lines, l)
		allPass = allPass && r.Status == dkim.StatusPass
	}
	if *asJSON {
		out := struct {
			Pass                  bool         `json:"pass"`
			Signatures            []verifyLine `json:"signatures"`
			AuthenticationResults string       `json:"authentication_results,omitempty"`
		}{allPass, lines, ""}
		if *authserv != "" {
			out.AuthenticationResults = strings.TrimSuffix(dkim.AuthenticationResults(*authserv, results), "\r\n")
		}
		if err := writeJSON(e.Stdout, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
		if len(lines) == 0 {
			fmt.Fprintln(tw, "none\tthe message has no DKIM-Signature")
		}
		for _, l := range lines {
			who := "-"
			if l.Domain != "" {
				who = "d=" + l.Domain + " s=" + l.Selector + " a=" + l.Algorithm
			}
			bits := ""
			if l.KeyBits > 0 {
				bits = strconv.Itoa(l.KeyBits) + "-bit key"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Status, who, bits, l.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if *authserv != "" {
			fmt.Fprint(e.Stdout, strings.ReplaceAll(dkim.AuthenticationResults(*authserv, results), "\r\n", "\n"))
		}
	}
	if !allPass {
		return resultError{"not every signature passed"}
	}
	return nil
}

func normalizeName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

// readTXTFile reads a TXT value from a file: either the value itself, or a
// zone-file line or fragment, whose quoted character-strings
// (`"v=DKIM1; ..." "..."`) are joined as a resolver joins them.
func readTXTFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if !strings.Contains(s, `"`) {
		return strings.Join(strings.Fields(s), " "), nil
	}
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			in = !in
		case c == '\\' && in && i+1 < len(s):
			i++
			if i+2 < len(s) && isDigit3(s[i:i+3]) {
				n, _ := strconv.Atoi(s[i : i+3])
				b.WriteByte(byte(n))
				i += 2
			} else {
				b.WriteByte(s[i])
			}
		case in:
			b.WriteByte(c)
		}
	}
	if in {
		return "", fmt.Errorf("%s: unterminated quoted string", path)
	}
	return b.String(), nil
}

func isDigit3(s string) bool {
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
