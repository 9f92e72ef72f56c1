package archtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Errors are classified with errors.Is and errors.As and carry the words
// for people as data (store.Detail, dkim.Describe); nothing reads or cuts
// error text (STYLE.md, "Errors"; issue 11 point 6). These patterns find
// the ways code did: a strings function that reads or cuts an error's
// text, directly or through a variable that holds it, and a typed error
// turned back into a bare string.
var (
	// cutters are the strings functions that read or cut text; Join,
	// Fields and ReplaceAll only lay it out.
	cutters = `strings\.(?:Trim\w*|Cut\w*|Index\w*|LastIndex\w*|Split\w*|HasPrefix|HasSuffix|Contains\w*|EqualFold|Count)\(`
	// cutErrorText: strings.TrimPrefix(err.Error(), "x: ") and
	// strings.TrimPrefix(m, ErrX.Error()+": ").
	cutErrorText = regexp.MustCompile(cutters + `[^;]*\.Error\(\)`)
	// errorTextVar: msg := err.Error(), whose variable cutErrorVar then
	// looks for.
	errorTextVar = regexp.MustCompile(`^\s*(\w+)\s*:?=\s*[\w.]+\.Error\(\)\s*$`)
	// stringlyError: fmt.Errorf("%s", e.Error) or ("%v", err.Error()).
	stringlyError = regexp.MustCompile(`fmt\.Errorf\("%[sv]", [\w.]+\.Error\b`)
)

// errorTextAllowed lists the places that still read error text, each with
// why; the list only shrinks.
var errorTextAllowed = map[string]string{
	// x/net/idna's errors have no exported type, and quote the input. The
	// domain name work (branch domain) owns this file.
	"internal/mailaddr/domain.go:idnaReason": "x/net/idna has no typed errors",
}

// errorTextViolations gives the lines of src (a Go file named name) that
// read error text, as "name:line: text", leaving out those errorTextAllowed
// lists by function.
func errorTextViolations(name, src string) []string {
	var out []string
	vars := map[string]bool{}
	fn := ""
	for i, line := range strings.Split(src, "\n") {
		code, _, _ := strings.Cut(line, "//")
		if strings.HasPrefix(code, "func ") {
			fn, vars = funcName(code), map[string]bool{}
		}
		if m := errorTextVar.FindStringSubmatch(code); m != nil {
			vars[m[1]] = true
		}
		bad := cutErrorText.MatchString(code) || stringlyError.MatchString(code)
		for v := range vars {
			if regexp.MustCompile(cutters + `\s*` + regexp.QuoteMeta(v) + `\b`).MatchString(code) {
				bad = true
			}
		}
		if bad {
			if _, ok := errorTextAllowed[name+":"+fn]; !ok {
				out = append(out, fmt.Sprintf("%s:%d: %s", name, i+1, strings.TrimSpace(line)))
			}
		}
	}
	return out
}

// funcName gives the name of the function a "func ..." line declares.
func funcName(line string) string {
	rest := strings.TrimPrefix(line, "func ")
	if strings.HasPrefix(rest, "(") {
		if _, after, ok := strings.Cut(rest, ") "); ok {
			rest = after
		}
	}
	name, _, _ := strings.Cut(rest, "(")
	name, _, _ = strings.Cut(name, "[")
	return strings.TrimSpace(name)
}

// TestNoErrorTextParsing checks every Go file of the module outside tests.
func TestNoErrorTextParsing(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			n++
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			for _, v := range errorTextViolations(filepath.ToSlash(rel), string(b)) {
				t.Errorf("%s: reads error text; classify with errors.Is/As and carry the words as data", v)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 50 {
		t.Fatalf("checked %d files: run from internal/archtest", n)
	}
}

// TestErrorTextViolationsFinds runs the checker on the lines issue 11
// point 6 named, as they were: each is found, and the clean forms are not.
func TestErrorTextViolationsFinds(t *testing.T) {
	bad := []string{
		"func tagListDetail(err error) string {\n\treturn strings.TrimPrefix(err.Error(), ErrTagList.Error()+\": \")\n}",
		"func (r *Result) Reason() string {\n\treturn strings.TrimPrefix(r.Err.Error(), \"dkim: \")\n}",
		"func message(err error, drop ...error) string {\n\tm := err.Error()\n\tfor _, d := range drop {\n\t\tm = strings.TrimPrefix(m, d.Error()+\": \")\n\t}\n}",
		"func message(err error) string {\n\tm := err.Error()\n\trest, ok := strings.CutPrefix(m, \"store: \")\n}",
		"func do() error {\n\t\treturn nil, fmt.Errorf(\"%s\", e.Error)\n}",
		"func decide() {\n\td.Message = \"x: \" + strings.TrimPrefix(err.Error(), ErrFromInvalid.Error()+\": \")\n}",
		"func idnaReason(err error) string {\n\tmsg := err.Error()\n\tif i := strings.Index(msg, \":\"); i > 0 {\n\t}\n}",
	}
	for _, src := range bad {
		if v := errorTextViolations("internal/x/x.go", src); len(v) == 0 {
			t.Errorf("not found:\n%s", src)
		}
	}
	good := []string{
		"func (p *Problem) Error() string {\n\treturn p.Err.Error() + \": \" + p.Message\n}",
		"func message(err error) string {\n\tm = err.Error()\n\treturn strings.Join(strings.Fields(m), \" \")\n}",
		"func f() {\n\tlog.Warn(\"x\", \"err\", err.Error())\n\t// strings.TrimPrefix(err.Error(), \"x\") in a comment\n}",
	}
	for _, src := range good {
		if v := errorTextViolations("internal/x/x.go", src); len(v) != 0 {
			t.Errorf("clean code reported: %v", v)
		}
	}
	if v := errorTextViolations("internal/mailaddr/domain.go", bad[len(bad)-1]); len(v) != 0 {
		t.Errorf("allowed function reported: %v", v)
	}
}
