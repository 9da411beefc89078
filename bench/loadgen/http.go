package main

// HTTP load: keep-alive connections over raw TCP (net/http's client costs more CPU per request
// than the servers under test), one request in flight per connection.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type httpConn struct {
	c      net.Conn
	r      *bufio.Reader
	sentAt atomic.Int64 // send time of the request in flight; 0 idle; -1 timed out (closed by sweep)
	req    []byte
	body   []byte
}

type httpEngine struct {
	target string
	conns  []*httpConn
	done   chan struct{}
	closed atomic.Bool
}

func newHTTPEngine(target string, n int) (*httpEngine, error) {
	h := &httpEngine{target: target, done: make(chan struct{})}
	for i := 0; i < n; i++ {
		hc := &httpConn{req: make([]byte, 0, 512), body: make([]byte, 4096)}
		if err := h.dial(hc); err != nil {
			h.close()
			return nil, err
		}
		h.conns = append(h.conns, hc)
	}
	go h.sweep()
	return h, nil
}

func (h *httpEngine) dial(hc *httpConn) error {
	c, err := net.DialTimeout("tcp", h.target, cfg.timeout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", h.target, err)
	}
	hc.c = c
	if hc.r == nil {
		hc.r = bufio.NewReaderSize(c, 16384)
	} else {
		hc.r.Reset(c)
	}
	return nil
}

// sweep closes connections whose request has waited longer than the timeout; the reader then
// fails and counts a timeout.
func (h *httpEngine) sweep() {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	limit := int64(cfg.timeout)
	for {
		select {
		case <-h.done:
			return
		case <-tk.C:
		}
		now := nowNs()
		for _, hc := range h.conns {
			s := hc.sentAt.Load()
			if s > 0 && now-s > limit && hc.sentAt.CompareAndSwap(s, -1) {
				hc.c.Close()
			}
		}
	}
}

func (h *httpEngine) run(p *phase) {
	var wg sync.WaitGroup
	for _, hc := range h.conns {
		wg.Add(1)
		go func(hc *httpConn) {
			defer wg.Done()
			h.loop(hc, p)
		}(hc)
	}
	wg.Wait()
}

const hexUpper = "0123456789ABCDEF"

func appendPercent(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return dst
}

func buildRequest(dst []byte, peer int, event int) []byte {
	var id [20]byte
	peerID(id[:], peer)
	ih := &infoHashes[peerTorrent(peer)]
	dst = append(dst, "GET /announce?info_hash="...)
	dst = appendPercent(dst, ih[:])
	dst = append(dst, "&peer_id="...)
	dst = appendPercent(dst, id[:])
	dst = append(dst, "&port="...)
	dst = strconv.AppendUint(dst, uint64(peerPort(peer)), 10)
	dst = append(dst, "&uploaded=0&downloaded=0&left="...)
	dst = strconv.AppendUint(dst, peerLeft(peer), 10)
	dst = append(dst, "&compact=1&numwant="...)
	dst = strconv.AppendInt(dst, int64(cfg.numwant), 10)
	if event == 2 {
		dst = append(dst, "&event=started"...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: x\r\n\r\n"...)
	return dst
}

func (h *httpEngine) loop(hc *httpConn, p *phase) {
	for {
		peer := p.nextPeer()
		if peer < 0 {
			return
		}
		if hc.c == nil {
			if h.closed.Load() {
				return
			}
			if err := h.dial(hc); err != nil {
				p.recordError(nowNs(), false)
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		hc.req = buildRequest(hc.req[:0], peer, p.event)
		sent := nowNs()
		hc.sentAt.Store(sent)
		var status, n int
		var keepAlive bool
		_, err := hc.c.Write(hc.req)
		if err == nil {
			status, n, keepAlive, err = hc.readResponse()
		}
		done := nowNs()
		timedOut := !hc.sentAt.CompareAndSwap(sent, 0)
		if timedOut {
			hc.sentAt.Store(0)
			p.recordTimeout(sent)
			hc.c.Close()
			hc.c = nil
			continue
		}
		if err != nil {
			p.recordError(done, false)
			hc.c.Close()
			hc.c = nil
			continue
		}
		body := hc.body[:n]
		switch {
		case status != 200 || n == 0 || body[0] != 'd':
			p.recordError(done, false)
		case bytes.Contains(body, []byte("failure reason")):
			p.recordError(done, true)
		default:
			p.recordOK(sent, done, n)
		}
		if !keepAlive {
			hc.c.Close()
			hc.c = nil
		}
	}
}

var errBadResponse = errors.New("malformed HTTP response")

func asciiHasPrefixFold(s []byte, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

func parseUint(b []byte) (int, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (int, bool) {
	if i := bytes.IndexByte(b, ';'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n*16 + int(c-'0')
		case 'a' <= c && c <= 'f':
			n = n*16 + int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n*16 + int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// readResponse reads one response into hc.body and returns its status and body length.
func (hc *httpConn) readResponse() (status, n int, keepAlive bool, err error) {
	line, err := hc.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, false, errBadResponse
	}
	status, ok := parseUint(line[9:12])
	if !ok {
		return 0, 0, false, errBadResponse
	}
	keepAlive = line[7] == '1'
	contentLength, chunked := -1, false
	for {
		line, err = hc.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		switch {
		case asciiHasPrefixFold(line, "content-length:"):
			if contentLength, ok = parseUint(line[15:]); !ok {
				return 0, 0, false, errBadResponse
			}
		case asciiHasPrefixFold(line, "transfer-encoding:"):
			chunked = bytes.Contains(bytes.ToLower(line), []byte("chunked"))
		case asciiHasPrefixFold(line, "connection:"):
			v := bytes.ToLower(line[11:])
			if bytes.Contains(v, []byte("close")) {
				keepAlive = false
			} else if bytes.Contains(v, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	if chunked {
		n, err = hc.readChunked()
		return status, n, keepAlive, err
	}
	if contentLength < 0 {
		return 0, 0, false, errBadResponse // we cannot find the end of the body on a kept-alive connection
	}
	if contentLength > 1<<20 {
		return 0, 0, false, errBadResponse
	}
	if cap(hc.body) < contentLength {
		hc.body = make([]byte, contentLength)
	}
	hc.body = hc.body[:cap(hc.body)]
	if _, err = ioReadFull(hc.r, hc.body[:contentLength]); err != nil {
		return 0, 0, false, err
	}
	return status, contentLength, keepAlive, nil
}

func (hc *httpConn) readChunked() (int, error) {
	n := 0
	for {
		line, err := hc.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		size, ok := parseHex(line)
		if !ok {
			return 0, errBadResponse
		}
		if size == 0 {
			for { // trailers
				line, err = hc.r.ReadSlice('\n')
				if err != nil {
					return 0, err
				}
				if len(line) <= 2 {
					return n, nil
				}
			}
		}
		if n+size > 1<<20 {
			return 0, errBadResponse
		}
		if cap(hc.body) < n+size {
			nb := make([]byte, 2*(n+size))
			copy(nb, hc.body[:n])
			hc.body = nb
		}
		hc.body = hc.body[:cap(hc.body)]
		if _, err = ioReadFull(hc.r, hc.body[n:n+size]); err != nil {
			return 0, err
		}
		n += size
		if _, err = hc.r.Discard(2); err != nil { // CRLF
			return 0, err
		}
	}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			if n == len(b) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}

func (h *httpEngine) close() {
	if h.closed.Swap(true) {
		return
	}
	close(h.done)
	for _, hc := range h.conns {
		if hc.c != nil {
			hc.c.Close()
		}
	}
}
