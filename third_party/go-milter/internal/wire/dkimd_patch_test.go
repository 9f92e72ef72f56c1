package wire

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// readConn is a net.Conn that reads from a byte slice.
type readConn struct {
	net.Conn
	r *bytes.Reader
}

func (c readConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ReadPacketBuf reads what ReadPacket reads, into one buffer for packets
// up to maxReusedBuf bytes, and a new one for longer packets (dkimd).
func TestReadPacketBuf(t *testing.T) {
	var in []byte
	sizes := []int{2, 5, 64 * 1024, 100, maxReusedBuf + 1, 3}
	for i, n := range sizes {
		in = binary.BigEndian.AppendUint32(in, uint32(n))
		in = append(in, bytes.Repeat([]byte{byte('A' + i)}, n)...)
	}
	plain := readConn{r: bytes.NewReader(in)}
	reused := readConn{r: bytes.NewReader(in)}
	var buf []byte
	for i, n := range sizes {
		want, err := ReadPacket(plain, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadPacketBuf(reused, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.Code != want.Code || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("packet %d: %c %d bytes, want %c %d bytes", i, got.Code, len(got.Data), want.Code, len(want.Data))
		}
		inBuf := cap(buf) > 0 && &got.Data[:cap(got.Data)][cap(got.Data)-1] == &buf[:cap(buf)][cap(buf)-1]
		if n <= maxReusedBuf && !inBuf {
			t.Errorf("packet %d (%d bytes) not read into the buffer", i, n)
		}
		if n > maxReusedBuf && (inBuf || cap(buf) > maxReusedBuf) {
			t.Errorf("packet %d (%d bytes) kept in the buffer", i, n)
		}
	}
	if cap(buf) != 64*1024 {
		t.Errorf("buffer of %d bytes, want %d (the longest packet up to the limit)", cap(buf), 64*1024)
	}
}
