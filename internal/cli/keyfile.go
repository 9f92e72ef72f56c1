package cli

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"strings"

	"github.com/dkimd/dkimd/internal/dkim"
	"github.com/dkimd/dkimd/internal/keys"
)

// keyOutput is what keygen and record print with --json.
type keyOutput struct {
	Domain    string   `json:"domain"`
	Selector  string   `json:"selector"`
	Algorithm string   `json:"algorithm"`
	Bits      int      `json:"bits"`
	KeyFile   string   `json:"key_file,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	dkim.Publication
}

func runKeygen(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("keygen", e)
	domain := fs.String("domain", "", "domain that signs (d=)")
	selector := fs.String("selector", "", "selector naming the key (s=)")
	alg := fs.String("algorithm", "rsa", "rsa or ed25519")
	bits := fs.Int("bits", 0, "RSA key length: 1024, 2048 (default), 3072 or 4096")
	out := fs.String("out", "", "file to write the private key to (default DOMAIN.SELECTOR.pem); never overwritten")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if err := requireFlags("domain", *domain, "selector", *selector); err != nil {
		return err
	}
	d, sel, err := checkNames(*domain, *selector)
	if err != nil {
		return err
	}
	a, err := keys.ParseAlgorithm(*alg)
	if err != nil {
		return usagef("%v", err)
	}
	spec, err := keys.Spec{Algorithm: a, Bits: *bits}.Normalize()
	if err != nil {
		return usagef("%v", err)
	}
	path := *out
	if path == "" {
		path = d + "." + sel + ".pem"
	}
	k, err := keys.Generate(nil, spec)
	if err != nil {
		return err
	}
	if err := keys.WriteFile(path, k); err != nil {
		return err
	}
	o, err := describeKey(d, sel, k)
	if err != nil {
		return err
	}
	o.KeyFile = path
	return printKey(e, o, "", *asJSON)
}

func runRecord(ctx context.Context, e *Env, args []string) error {
	fs := newFlags("record", e)
	keyFile := fs.String("key", "", "private key file (PEM)")
	domain := fs.String("domain", "", "domain that signs (d=)")
	selector := fs.String("selector", "", "selector naming the key (s=)")
	format := fs.String("format", "", "value, zone or json (default: all forms, for people)")
	asJSON := fs.Bool("json", false, "same as --format json")
	if _, err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if err := requireFlags("key", *keyFile, "domain", *domain, "selector", *selector); err != nil {
		return err
	}
	d, sel, err := checkNames(*domain, *selector)
	if err != nil {
		return err
	}
	f := *format
	if *asJSON {
		f = "json"
	}
	switch f {
	case "", "value", "zone", "json":
	default:
		return usagef("--format %q: want value, zone or json", f)
	}
	k, err := keys.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	o, err := describeKey(d, sel, k)
	if err != nil {
		return err
	}
	return printKey(e, o, f, f == "json")
}

// checkNames normalizes and validates a domain and selector from the command
// line.
func checkNames(domain, selector string) (string, string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	s := strings.ToLower(strings.TrimSpace(selector))
	if !dkim.ValidDomain(d) {
		return "", "", usagef("--domain %q is not a valid domain name (use the xn-- form for international names)", domain)
	}
	if !dkim.ValidSelector(s) {
		return "", "", usagef("--selector %q is not valid: use letters, digits and hyphens, labels separated by dots", selector)
	}
	return d, s, nil
}

func describeKey(domain, selector string, k crypto.Signer) (*keyOutput, error) {
	spec, err := keys.SpecOf(k)
	if err != nil {
		return nil, err
	}
	p, err := dkim.Publish(selector, domain, k.Public())
	if err != nil {
		return nil, err
	}
	return &keyOutput{
		Domain: domain, Selector: selector,
		Algorithm: string(spec.Algorithm), Bits: spec.Bits,
		Warnings:    spec.Warnings(),
		Publication: *p,
	}, nil
}

// printKey prints a key's record in the form asked for: "value" or "zone"
// alone for scripts, JSON, or every form for a person.
func printKey(e *Env, o *keyOutput, format string, asJSON bool) error {
	switch {
	case asJSON:
		return writeJSON(e.Stdout, o)
	case format == "value":
		_, err := fmt.Fprintln(e.Stdout, o.Value)
		return err
	case format == "zone":
		_, err := fmt.Fprintln(e.Stdout, o.Zone)
		return err
	}
	for _, w := range o.Warnings {
		fmt.Fprintf(e.Stderr, "warning: %s\n", w)
	}
	return printPublication(e.Stdout, o)
}

func printPublication(w io.Writer, o *keyOutput) error {
	kind := o.Algorithm
	if o.Algorithm == string(keys.RSA) {
		kind = fmt.Sprintf("RSA %d", o.Bits)
	}
	if o.KeyFile != "" {
		fmt.Fprintf(w, "Private key (%s) written to %s (mode 0600). Keep it secret.\n\n", kind, o.KeyFile)
	}
	fmt.Fprintf(w, "Publish this TXT record in the DNS zone of %s:\n\n", o.Domain)
	fmt.Fprintf(w, "  Host:   %s\n", o.Host)
	fmt.Fprintf(w, "          (full name %s)\n", o.Name)
	fmt.Fprintf(w, "  Type:   TXT\n")
	fmt.Fprintf(w, "  Value:  %s\n\n", o.Value)
	fmt.Fprintf(w, "Zone-file form (the value split into strings of at most 255 characters):\n\n%s\n", o.Zone)
	return nil
}
