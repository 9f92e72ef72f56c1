//go:build !amd64

package dkim

// fastScan reports whether scanPairs is vectorised here: not on this
// architecture, so bodyCanon keeps to its line-by-line path.
func fastScan() bool { return false }

// scanPairs is scanPairs of canon_scan_amd64.go without vectors: it leaves
// every pair to firstProblem.
func scanPairs([]byte, bool) int { return 0 }
