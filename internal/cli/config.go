package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// configFlag adds --config to serve's flags: a file of settings, default
// $DKIMD_CONFIG.
func configFlag(fs *flag.FlagSet, e *Env) *string {
	return fs.String("config", e.getenv("DKIMD_CONFIG"),
		`file of settings, one "name = value" a line, named as serve's flags (default $DKIMD_CONFIG)`)
}

// applyConfig sets the flags of fs from a configuration file, for every
// flag the command line did not set (the command line wins). The file
// holds one setting a line, "name = value", where name is a flag of the
// command without its dashes: "listen-relay = 127.0.0.1:2525". Blank lines
// and lines starting with "#" are skipped; a value may be put in double
// quotes, and "" is the empty value (a mail listener off). A repeatable
// flag may be given on several lines; any other flag once.
func applyConfig(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		at := fmt.Sprintf("%s:%d", path, i+1)
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return usagef("%s: want name = value", at)
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		f := fs.Lookup(name)
		if name == "init" {
			// Starting over beside an existing master key is a deliberate,
			// one-time act; a setting would repeat it on every start.
			return usagef("%s: init is not a setting: give --init on the command line, once", at)
		}
		if f == nil || name == "config" {
			return usagef("%s: unknown setting %q (the settings are the flags of the command, without dashes)", at, name)
		}
		_, repeatable := f.Value.(*listFlag)
		if seen[name] && !repeatable {
			return usagef("%s: %s is set twice", at, name)
		}
		seen[name] = true
		if onCommandLine[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return usagef("%s: %s: %v", at, name, err)
		}
	}
	return nil
}
