package smtp

import (
	"bytes"
	"errors"
	"io"
)

var ErrTooLongLine = errors.New("smtp: too long a line in input stream")

// lineLimitReader reads from the underlying Reader but restricts
// line length of lines in input stream to a certain length.
//
// If line length exceeds the limit - Read returns ErrTooLongLine
type lineLimitReader struct {
	R         io.Reader
	LineLimit int

	curLineLength int
}

func (r *lineLimitReader) Read(b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}

	n, err := r.R.Read(b)
	if err != nil {
		return n, err
	}

	if r.LineLimit == 0 {
		return n, nil
	}

	// dkimd patch: count line lengths a line at a time, not a byte at a
	// time; the lengths, the limit checks and the result are the same as
	// the byte loop's (a newline counts as the first byte of the next line).
	for p := b[:n]; len(p) > 0; {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.curLineLength += len(p)
			break
		}
		r.curLineLength += i
		if r.curLineLength > r.LineLimit {
			r.curLineLength = r.LineLimit + 1 // where the byte loop stopped
			return 0, ErrTooLongLine
		}
		r.curLineLength = 1
		p = p[i+1:]
	}
	if r.curLineLength > r.LineLimit {
		r.curLineLength = r.LineLimit + 1
		return 0, ErrTooLongLine
	}

	return n, nil
}
