package dkim

import (
	"os"
	"strings"
	"testing"
)

// The AVX2 test agrees with what Linux says of the CPU (the flag is shown
// only when the kernel also saves the YMM registers).
func TestHasAVX2(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	var flags []string
	for line := range strings.Lines(string(info)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			flags = strings.Fields(value)
			break
		}
	}
	if flags == nil {
		t.Skip("no flags line in /proc/cpuinfo")
	}
	want := false
	for _, f := range flags {
		want = want || f == "avx2"
	}
	if hasAVX2 != want {
		t.Fatalf("hasAVX2 = %v, /proc/cpuinfo says avx2 %v", hasAVX2, want)
	}
}
