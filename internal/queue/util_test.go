package queue

import (
	"bufio"
	"bytes"
	"context"
	"hash/crc32"
	"os"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func contextWithCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
