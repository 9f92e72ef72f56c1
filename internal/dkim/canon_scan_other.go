//go:build !amd64

package dkim

// fastScan reports whether scanBlocks is vectorised here: not on this
// architecture, so bodyCanon keeps to its line-by-line path.
func fastScan() bool { return false }

// scanBlocks is scanBlocks of canon_scan_amd64.go without vectors: it
// leaves every pair to pairScan.next.
func scanBlocks([]byte, bool) (int, uint64) { return 0, 0 }
