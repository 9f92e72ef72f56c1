// Package archtest enforces the import rules that each package's doc.go
// states ("dkim imports only the standard library", "queue does not import
// delivery", ...): its test reads the import graph with go list and fails
// on a rule that no longer holds, naming the package, the import that
// breaks it and the sentence of doc.go it breaks. A new package gets a rule
// here when it gets its doc.go; the test fails for a package with none.
//
// This package has no non-test code and must not be imported.
package archtest
