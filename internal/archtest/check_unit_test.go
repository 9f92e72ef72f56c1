package archtest

import (
	"slices"
	"strings"
	"testing"
)

// TestCheckFindsBrokenRules runs the checker on a made-up graph: a clean
// one passes, and each kind of rule, broken once, gives exactly its line.
func TestCheckFindsBrokenRules(t *testing.T) {
	const m = "example.test/mod"
	clean := func() graph {
		return graph{
			module: m,
			imports: map[string][]string{
				m + "/cmd/app":             {m + "/internal/cli"},
				m + "/internal/cli":        {m + "/internal/queue", m + "/internal/delivery", "fmt"},
				m + "/internal/dkim":       {"crypto"},
				m + "/internal/queue":      {"os"},
				m + "/internal/delivery":   {m + "/internal/queue", "net"},
				m + "/internal/store":      {"errors"},
				m + "/internal/queue/qt":   {m + "/internal/queue"},
				m + "/internal/other/deep": {"errors"},
			},
			deps: map[string][]string{
				m + "/cmd/app":             {m + "/internal/cli"},
				m + "/internal/cli":        {m + "/internal/queue", m + "/internal/delivery", "fmt"},
				m + "/internal/dkim":       {"crypto", "crypto/internal/x"},
				m + "/internal/queue":      {"os"},
				m + "/internal/delivery":   {m + "/internal/queue", "net"},
				m + "/internal/store":      {"errors"},
				m + "/internal/queue/qt":   {m + "/internal/queue"},
				m + "/internal/other/deep": {"errors"},
			},
			std: map[string]bool{"crypto": true, "crypto/internal/x": true, "fmt": true, "os": true, "net": true, "errors": true},
		}
	}
	rules := []rule{
		{pkg: "internal/dkim", stdOnly: true, why: "std only"},
		{pkg: "internal/queue", only: []string{}, why: "nothing of the module"},
		{pkg: "internal/delivery", only: []string{"internal/queue"}, why: "only queue"},
		{pkg: "internal/store", deny: []string{"internal/cli", "modernc.org/sqlite"}, why: "no cli, no driver"},
		{pkg: "internal/queue/qt", testOnly: true, why: "tests only"},
		{pkg: "internal/cli", importedBy: []string{"cmd/app"}, why: "main only"},
		{pkg: "internal/other/deep", why: "no rule of its own beyond existing"},
	}
	add := func(g graph, from, to string, std bool) graph {
		g.imports[m+"/"+from] = append(g.imports[m+"/"+from], to)
		g.deps[m+"/"+from] = append(g.deps[m+"/"+from], to)
		if std {
			g.std[to] = true
		}
		return g
	}
	tests := []struct {
		name   string
		change func(graph) graph
		rules  []rule
		want   []string
	}{
		{"clean graph", func(g graph) graph { return g }, rules, nil},
		{"dkim depends on a module outside the standard library", func(g graph) graph {
			g.deps[m+"/internal/dkim"] = append(g.deps[m+"/internal/dkim"], "golang.org/x/crypto/ed25519")
			return g
		}, rules, []string{"internal/dkim depends on golang.org/x/crypto/ed25519: std only"}},
		{"queue imports delivery", func(g graph) graph { return add(g, "internal/queue", m+"/internal/delivery", false) },
			rules, []string{"internal/queue imports internal/delivery: nothing of the module"}},
		{"delivery imports store", func(g graph) graph { return add(g, "internal/delivery", m+"/internal/store", false) },
			rules, []string{"internal/delivery imports internal/store: only queue"}},
		{"store imports a database driver", func(g graph) graph { return add(g, "internal/store", "modernc.org/sqlite", false) },
			rules, []string{"internal/store imports modernc.org/sqlite: no cli, no driver"}},
		{"store imports below a denied package", func(g graph) graph { return add(g, "internal/store", m+"/internal/cli/sub", false) },
			rules, []string{"internal/store imports internal/cli/sub: no cli, no driver"}},
		{"a package imports a test double", func(g graph) graph { return add(g, "internal/delivery", m+"/internal/queue/qt", false) },
			rules, []string{"internal/delivery imports internal/queue/qt: only queue", "internal/queue/qt is imported by internal/delivery: tests only"}},
		{"a test double built on another is fine", func(g graph) graph {
			g = add(g, "internal/delivery/dt", m+"/internal/queue/qt", false)
			g.deps[m+"/internal/delivery/dt"] = g.imports[m+"/internal/delivery/dt"]
			return g
		}, append(slices.Clone(rules), rule{pkg: "internal/delivery/dt", testOnly: true, why: "tests only"}), nil},
		{"cli imported by another package", func(g graph) graph { return add(g, "internal/store", m+"/internal/cli", false) },
			rules, []string{"internal/cli is imported by internal/store: main only", "internal/store imports internal/cli: no cli, no driver"}},
		{"a rule for a package that is gone", func(g graph) graph { return g },
			append(slices.Clone(rules), rule{pkg: "internal/milter", why: "x"}), []string{"internal/milter: no such package (a rule for a package that moved?)"}},
		{"a package without a rule", func(g graph) graph {
			g.imports[m+"/internal/new"], g.deps[m+"/internal/new"] = nil, nil
			return g
		}, rules, []string{"internal/new: no import rule (add its doc.go's to rules_test.go)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check(tt.change(clean()), tt.rules)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("check:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
