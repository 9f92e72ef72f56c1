package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/dkimd/dkimd/internal/store"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Env is what a command may touch of the outside world. Tests give their
// own; Main's caller gives the process's.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

func (e *Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *Env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the service: SMTP relay and delivery, control panel, JSON API, DNS monitor", runServe},
		{"keygen", "generate a key pair into a file and print its DNS record", runKeygen},
		{"record", "print the DNS record for a private key file", runRecord},
		{"sign", "sign a message read from standard input", runSign},
		{"verify", "verify the DKIM signatures of a message read from standard input", runVerify},
		{"bench", "measure signing speed on one core (bench sign)", runBench},
		{"domain", "add, remove, list and set domains (domain add|remove|list|set)", runDomain},
		{"key", "generate and manage stored keys (key generate|import|list|record|rotate|status|history|activate|retire|revoke|archive|delete)", runKey},
		{"user", "manage outgoing users (user add|set|list|remove)", runUser},
		{"account", "manage panel accounts and API tokens (account add|list|remove|token|password)", runAccount},
		{"audit", "show the audit log", runAudit},
		{"queue", "the mail queue (queue list|show|retry|remove)", runQueue},
		{"dns", "check a key's DNS record (dns check --domain D --selector S [--key FILE])", runDNS},
		{"policy", "which key would sign a user's mail, and why (policy explain --user U | --auth-user LOGIN | --client-ip IP --from ADDR)", runPolicy},
		{"migrate", "copy a SQLite data directory into an empty PostgreSQL database (migrate --from DIR --to postgres://...)", runMigrate},
	}
}

// Main runs the command named by args[1:] and returns the exit code.
func Main(ctx context.Context, args []string, e *Env) int {
	if len(args) < 2 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(e.Stdout)
		if len(args) < 2 {
			return exitUsage
		}
		return exitOK
	}
	name := args[1]
	for _, c := range commands() {
		if c.name == name {
			return exitCode(e, name, c.run(ctx, e, args[2:]))
		}
	}
	fmt.Fprintf(e.Stderr, "dkimd: unknown command %q (run \"dkimd help\")\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dkimd: a DKIM service for outgoing mail: keys, DNS records, a signing relay, verifying.\n\nUsage: dkimd COMMAND [flags]\n\nCommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"dkimd COMMAND -h\" for a command's flags.")
}

// usageError marks a mistake in how a command was called (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// resultError reports a negative result whose details the command has
// already printed (exit 1, no further message).
type resultError struct{ msg string }

func (r resultError) Error() string { return r.msg }

func exitCode(e *Env, name string, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var u usageError
	var r resultError
	switch {
	case errors.As(err, &u):
		fmt.Fprintf(e.Stderr, "dkimd %s: %s\n", name, u.msg)
		return exitUsage
	case errors.As(err, &r):
		return exitFailure
	}
	fmt.Fprintf(e.Stderr, "dkimd %s: %s\n", name, message(err))
	return exitFailure
}

// message is what a person reads of err: the sentence it carries for
// people (store.Detail), the same the JSON API answers, after the field it
// names; else its text, which for the errors of this package and of the
// operating system is written for the person at the terminal. It is one
// line: error chains may span lines when they quote input.
func message(err error) string {
	m, field, ok := store.Detail(err)
	switch {
	case !ok:
		m = err.Error()
	case field != "":
		m = "invalid " + field + ": " + m
	}
	return strings.Join(strings.Fields(m), " ")
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
