package archtest

import (
	"fmt"
	"slices"
	"strings"
)

// graph is the import graph of the module's packages, without tests: for
// each, the packages it imports (go list's Imports) and every package it
// depends on, directly or not (Deps), and whether a package is in the
// standard library.
type graph struct {
	module  string              // the module path, e.g. github.com/dkimd/dkimd
	imports map[string][]string // import path → what it imports
	deps    map[string][]string // import path → its dependencies
	std     map[string]bool     // import path → in the standard library
}

// rule is what one package's doc.go says it may and may not import. Paths
// are relative to the module ("internal/queue"); in deny and importedBy a
// path stands for the package and everything below it. only, deny and importedBy are about
// what a package imports itself, as doc.go sentences are ("metrics must
// not import store", though the relay it reads counters from does);
// stdOnly is about everything it depends on.
type rule struct {
	pkg string
	// why quotes or sums up the doc.go sentence, for the failure message.
	why string
	// stdOnly allows the standard library and nothing else.
	stdOnly bool
	// only, when not nil, lists the packages of this module the package
	// may import, exactly (internal/store allows no store backend); any
	// other package of the module breaks the rule.
	only []string
	// deny lists packages, of this module (relative) or not (a module
	// path such as modernc.org/sqlite), it must not depend on.
	deny []string
	// testOnly means no package but tests may depend on this one.
	testOnly bool
	// importedBy, when not nil, lists the only packages that may depend
	// on this one.
	importedBy []string
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// rel turns an import path of the module into a relative one; ok is false
// for a path outside the module.
func (g graph) rel(path string) (string, bool) {
	if !under(path, g.module) {
		return path, false
	}
	return strings.TrimPrefix(strings.TrimPrefix(path, g.module), "/"), true
}

// check returns one line per broken rule, and one per package of the
// module under internal/ that has no rule, sorted.
func check(g graph, rules []rule) []string {
	var out []string
	ruled, testOnly := map[string]bool{}, map[string]bool{}
	for _, r := range rules {
		testOnly[r.pkg] = r.testOnly
	}
	for _, r := range rules {
		ruled[r.pkg] = true
		deps, ok := g.deps[g.module+"/"+r.pkg]
		imports := g.imports[g.module+"/"+r.pkg]
		if !ok {
			out = append(out, fmt.Sprintf("%s: no such package (a rule for a package that moved?)", r.pkg))
			continue
		}
		if r.stdOnly {
			for _, d := range deps {
				if !g.std[d] {
					out = append(out, fmt.Sprintf("%s depends on %s: %s", r.pkg, d, r.why))
				}
			}
		}
		for _, d := range imports {
			rd, mine := g.rel(d)
			switch {
			case mine && r.only != nil && !slices.Contains(r.only, rd):
				out = append(out, fmt.Sprintf("%s imports %s: %s", r.pkg, rd, r.why))
			case slices.ContainsFunc(r.deny, func(p string) bool { return under(rd, p) }):
				out = append(out, fmt.Sprintf("%s imports %s: %s", r.pkg, rd, r.why))
			}
		}
		if !r.testOnly && r.importedBy == nil {
			continue
		}
		for p, imports := range g.imports {
			rp, mine := g.rel(p)
			if !mine || rp == r.pkg || !slices.Contains(imports, g.module+"/"+r.pkg) {
				continue
			}
			if r.testOnly && testOnly[rp] {
				continue // a test helper built on another is still for tests only
			}
			if r.testOnly || !slices.ContainsFunc(r.importedBy, func(q string) bool { return under(rp, q) }) {
				out = append(out, fmt.Sprintf("%s is imported by %s: %s", r.pkg, rp, r.why))
			}
		}
	}
	for p := range g.deps {
		if rp, mine := g.rel(p); mine && under(rp, "internal") && !ruled[rp] {
			out = append(out, fmt.Sprintf("%s: no import rule (add its doc.go's to rules_test.go)", rp))
		}
	}
	slices.Sort(out)
	return out
}
