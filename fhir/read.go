package fhir

import "io"

// sizer is a reader that knows its length: bytes.Reader, strings.Reader, or a
// request body with a Content-Length.
type sizer interface{ Size() int64 }

const (
	firstChunk = 64 << 10
	maxChunk   = 8 << 20
)

// readAll reads r to its end, but no more than limit bytes, into one buffer
// allocated once: of the size r announces (Size), or, when it announces none,
// of the total after reading into chunks (then the input is briefly held
// twice). An announced size is a hint: a shorter input gives a shorter slice,
// a longer one is read on.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	var hint int64
	if s, ok := r.(sizer); ok {
		hint = min(s.Size(), limit)
	}
	r = io.LimitReader(r, limit)
	if hint <= 0 {
		return readChunks(r, nil)
	}
	buf := make([]byte, hint)
	n, eof, err := fill(r, buf)
	switch {
	case err != nil:
		return nil, err
	case eof:
		return buf[:n], nil
	}
	return readChunks(r, buf)
}

// fill reads from r until buf is full or r ends (eof). Only io.EOF ends r: any
// other error, io.ErrUnexpectedEOF included (a body shorter than its
// Content-Length), is returned.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// readChunks reads r to its end after head, in chunks of growing size, and
// joins head and the chunks in one buffer (head itself when r had no more).
func readChunks(r io.Reader, head []byte) ([]byte, error) {
	var chunks [][]byte
	total := len(head)
	size := firstChunk
	for {
		c := make([]byte, size)
		n, eof, err := fill(r, c)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			chunks = append(chunks, c[:n])
			total += n
		}
		if eof {
			break
		}
		size = min(2*size, maxChunk)
	}
	if len(chunks) == 0 {
		return head, nil
	}
	if head == nil && len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	out = append(out, head...)
	for i, c := range chunks {
		out = append(out, c...)
		chunks[i] = nil // collectable as soon as copied
	}
	return out, nil
}
