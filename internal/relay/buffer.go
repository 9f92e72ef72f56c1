package relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
)

// msgBuffer holds one message while it is received and signed: in memory up to
// Options.BufferMemoryBytes, in a temporary file in TempDir beyond. Creating
// and removing that file alone took about 4% of dkimd's CPU relaying small
// messages, writing and reading it back more system calls, so the common
// message never gets one.
//
// Write takes the message; a write error is the buffer's, never the client's.
// Buffers and their memory are reused: get one with Server.getBuffer and give
// it back with Server.putBuffer, after close.
type msgBuffer struct {
	srv *Server
	// limit is the most held in memory; over it, the message moves to f.
	limit int
	// mem is the message while it is in memory; it starts with the header
	// (readHeader).
	mem []byte
	// f, bw and fr are the temporary file, once the message outgrew mem,
	// and the buffers writing and reading it.
	f  *os.File
	bw *bufio.Writer
	fr *bufio.Reader
	// mr reads mem back.
	mr bytes.Reader
}

// getBuffer hands out a message buffer, with the memory of one used before.
func (s *Server) getBuffer() *msgBuffer {
	sp, _ := s.msgBufs.Get().(*msgBuffer)
	if sp == nil {
		sp = &msgBuffer{}
	}
	sp.srv, sp.limit = s, s.opts.BufferMemoryBytes
	return sp
}

// putBuffer takes back a closed message buffer. Its memory is kept for the next
// message only if it stayed within the limit (a large header can take it
// beyond): a pool of buffers as large as the largest message seen would
// hold that much for every connection that ever sent one.
func (s *Server) putBuffer(sp *msgBuffer) {
	mem := sp.mem[:0]
	if cap(mem) > s.opts.BufferMemoryBytes {
		mem = nil
	}
	*sp = msgBuffer{mem: mem}
	s.msgBufs.Put(sp)
}

// readHeader reads the header (see readHeader) into the buffer's memory,
// where it is the start of the message: call hold before any Write.
func (sp *msgBuffer) readHeader(br *bufio.Reader, maxBytes int) ([]byte, error) {
	h, err := readHeader(br, maxBytes, sp.mem[:0])
	if err != nil {
		return nil, err
	}
	sp.mem = h
	return h, nil
}

// hold takes the header read by readHeader as the start of the message,
// moving it to a file at once if it is over the limit.
func (sp *msgBuffer) hold() error {
	if len(sp.mem) > sp.limit {
		return sp.spill()
	}
	return nil
}

// Write adds p to the message, moving the message to a file when it grows
// over the limit.
func (sp *msgBuffer) Write(p []byte) (int, error) {
	if sp.f == nil {
		n := len(sp.mem) + len(p)
		if n <= sp.limit {
			if n > cap(sp.mem) {
				// Double, but never over the limit, so that the buffer
				// can be reused (putBuffer).
				m := make([]byte, len(sp.mem), min(max(2*cap(sp.mem), n, 4<<10), sp.limit))
				copy(m, sp.mem)
				sp.mem = m
			}
			sp.mem = append(sp.mem, p...)
			return len(p), nil
		}
		if err := sp.spill(); err != nil {
			return 0, err
		}
	}
	return sp.bw.Write(p)
}

// spill moves the message to a temporary file, where the rest follows.
func (sp *msgBuffer) spill() error {
	f, err := os.CreateTemp(sp.srv.opts.TempDir, "relay-*.eml")
	if err != nil {
		return err
	}
	sp.f, sp.bw = f, sp.srv.getWriter(f)
	_, err = sp.bw.Write(sp.mem)
	return err
}

// flush ends the writing: what is buffered goes to the file, if any.
func (sp *msgBuffer) flush() error {
	if sp.f == nil {
		return nil
	}
	return sp.bw.Flush()
}

// reader gives the message from its start, after flush. It stays valid
// until close.
func (sp *msgBuffer) reader() (io.Reader, error) {
	if sp.f == nil {
		sp.mr.Reset(sp.mem)
		return &sp.mr, nil
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sp.fr = sp.srv.getReader(sp.f)
	return sp.fr, nil
}

// close removes the temporary file, if there is one. An error means it may
// be left behind.
func (sp *msgBuffer) close() error {
	if sp.fr != nil {
		sp.srv.putReader(sp.fr)
	}
	if sp.f == nil {
		return nil
	}
	sp.srv.putWriter(sp.bw)
	sp.f.Close() // only read since flush: nothing to lose
	if err := os.Remove(sp.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// getReader and getWriter hand out 32 KiB buffers for a message,
// reused: allocating them per message kept the garbage collector busy.
func (s *Server) getReader(r io.Reader) *bufio.Reader {
	br, _ := s.readers.Get().(*bufio.Reader)
	if br == nil {
		return bufio.NewReaderSize(r, 32<<10)
	}
	br.Reset(r)
	return br
}

func (s *Server) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.readers.Put(br)
}

func (s *Server) getWriter(w io.Writer) *bufio.Writer {
	bw, _ := s.writers.Get().(*bufio.Writer)
	if bw == nil {
		return bufio.NewWriterSize(w, 32<<10)
	}
	bw.Reset(w)
	return bw
}

func (s *Server) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	s.writers.Put(bw)
}
