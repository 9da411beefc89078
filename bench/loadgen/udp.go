package main

// UDP load (BEP 15). A few connected sockets; each has a table of slots, one per outstanding
// request. The transaction id is slot<<20 | generation, so a reply is matched to its request
// without a map, and a late reply to a timed-out request (older generation) is ignored.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	protocolID        = 0x41727101980
	maxSlotsPerSocket = 4095 // slot 4095 is reserved for connect requests
	connectTid        = uint32(0xFFF00000 | 0x0C0DE)
	connectRefresh    = 60 * time.Second
)

type udpSlot struct {
	gen   uint32
	busy  bool
	sent  int64
	phase *phase
}

type udpSock struct {
	conn  *net.UDPConn
	bio   *batchIO
	mu    sync.Mutex
	slots []udpSlot
	free  chan int
}

type udpEngine struct {
	socks     []*udpSock
	connID    atomic.Uint64
	connected chan struct{}
	closed    atomic.Bool
	done      chan struct{}
}

func newUDPEngine(target string, nsock, slotsPerSock int) (*udpEngine, error) {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", target, err)
	}
	u := &udpEngine{connected: make(chan struct{}, 1), done: make(chan struct{})}
	for i := 0; i < nsock; i++ {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			u.close()
			return nil, fmt.Errorf("udp socket to %s: %w", target, err)
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		s := &udpSock{conn: c, slots: make([]udpSlot, slotsPerSock), free: make(chan int, slotsPerSock)}
		if s.bio, err = newBatchIO(c); err != nil {
			c.Close()
			u.close()
			return nil, err
		}
		for k := 0; k < slotsPerSock; k++ {
			s.free <- k
		}
		u.socks = append(u.socks, s)
		go u.read(s)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = u.connect(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		u.close()
		return nil, fmt.Errorf("BEP 15 connect to %s: %w", target, lastErr)
	}
	go u.sweep()
	go u.refresh()
	return u, nil
}

// connect sends a BEP 15 connect request on the first socket and waits for the reply, which the
// reader stores in connID.
func (u *udpEngine) connect() error {
	select { // drop a stale signal
	case <-u.connected:
	default:
	}
	var pkt [16]byte
	binary.BigEndian.PutUint64(pkt[0:], protocolID)
	binary.BigEndian.PutUint32(pkt[8:], 0)
	binary.BigEndian.PutUint32(pkt[12:], connectTid)
	if _, err := u.socks[0].conn.Write(pkt[:]); err != nil {
		return err
	}
	t := time.NewTimer(cfg.timeout)
	defer t.Stop()
	select {
	case <-u.connected:
		return nil
	case <-t.C:
		return errors.New("no connect reply")
	}
}

// refresh renews the connection id every minute (BEP 15: ids live two minutes).
func (u *udpEngine) refresh() {
	tk := time.NewTicker(connectRefresh)
	defer tk.Stop()
	for {
		select {
		case <-u.done:
			return
		case <-tk.C:
		}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if err = u.connect(); err == nil || u.closed.Load() {
				break
			}
		}
		if err != nil && !u.closed.Load() {
			fmt.Fprintf(os.Stderr, "loadgen: connection id refresh failed: %v\n", err)
		}
	}
}

func (u *udpEngine) read(s *udpSock) {
	bufs := make([][]byte, maxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	lens := make([]int, maxBatch)
	for {
		got, err := s.bio.readBatch(bufs, lens)
		if err != nil {
			if u.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// ECONNREFUSED (ICMP port unreachable) and the like: the matching request will time out
			if got == 0 {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		done := nowNs()
		for k := 0; k < got; k++ {
			u.handleReply(s, bufs[k][:lens[k]], done)
		}
	}
}

func (u *udpEngine) handleReply(s *udpSock, buf []byte, done int64) {
	n := len(buf)
	if n < 8 {
		return // cannot match it to a request
	}
	action := binary.BigEndian.Uint32(buf[0:])
	tid := binary.BigEndian.Uint32(buf[4:])
	if tid == connectTid {
		if action == 0 && n >= 16 {
			u.connID.Store(binary.BigEndian.Uint64(buf[8:16]))
			select {
			case u.connected <- struct{}{}:
			default:
			}
		}
		return
	}
	idx := int(tid >> 20)
	if idx >= len(s.slots) {
		return
	}
	s.mu.Lock()
	sl := &s.slots[idx]
	if !sl.busy || sl.gen&0xFFFFF != tid&0xFFFFF {
		s.mu.Unlock()
		return // late reply to a request already counted as timed out
	}
	sl.busy = false
	sent, p := sl.sent, sl.phase
	s.mu.Unlock()
	switch {
	case action == 1 && n >= 20:
		p.recordOK(sent, done, n)
	case action == 3:
		p.recordError(done, true)
	default:
		p.recordError(done, false)
	}
	s.free <- idx
}

// sweep frees slots whose request has waited longer than the timeout.
func (u *udpEngine) sweep() {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	limit := int64(cfg.timeout)
	for {
		select {
		case <-u.done:
			return
		case <-tk.C:
		}
		now := nowNs()
		for _, s := range u.socks {
			s.mu.Lock()
			for i := range s.slots {
				sl := &s.slots[i]
				if sl.busy && now-sl.sent > limit {
					sl.busy = false
					sl.gen++
					sl.phase.recordTimeout(sl.sent)
					s.free <- i
				}
			}
			s.mu.Unlock()
		}
	}
}

func (u *udpEngine) run(p *phase) {
	var wg sync.WaitGroup
	for _, s := range u.socks {
		wg.Add(1)
		go u.send(s, p, &wg)
	}
	wg.Wait()
}

func (u *udpEngine) send(s *udpSock, p *phase, wg *sync.WaitGroup) {
	defer wg.Done()
	pkts := make([][]byte, maxBatch)
	for k := range pkts {
		pkt := make([]byte, 98)
		binary.BigEndian.PutUint32(pkt[8:], 1)  // action announce
		binary.BigEndian.PutUint64(pkt[56:], 0) // downloaded
		binary.BigEndian.PutUint64(pkt[72:], 0) // uploaded
		binary.BigEndian.PutUint32(pkt[80:], uint32(p.event))
		binary.BigEndian.PutUint32(pkt[84:], 0) // ip: default (source address)
		binary.BigEndian.PutUint32(pkt[92:], uint32(cfg.numwant))
		pkts[k] = pkt
	}
	idxs := make([]int, 0, maxBatch)
	tids := make([]uint32, 0, maxBatch)
	stopped := false
	for !stopped {
		// every free slot, up to a batch: block for the first, take the rest that are ready
		idxs = append(idxs[:0], <-s.free)
	more:
		for len(idxs) < maxBatch {
			select {
			case i := <-s.free:
				idxs = append(idxs, i)
			default:
				break more
			}
		}
		tids = tids[:0]
		var sent int64
		for k, idx := range idxs {
			peer := p.nextPeer()
			if peer < 0 {
				for _, i := range idxs[k:] {
					s.free <- i
				}
				idxs = idxs[:k]
				stopped = true
				break
			}
			pkt := pkts[k]
			binary.BigEndian.PutUint64(pkt[0:], u.connID.Load())
			ih := &infoHashes[peerTorrent(peer)]
			copy(pkt[16:36], ih[:])
			peerID(pkt[36:56], peer)
			binary.BigEndian.PutUint64(pkt[64:], peerLeft(peer))
			binary.BigEndian.PutUint32(pkt[88:], uint32(peer)) // key
			binary.BigEndian.PutUint16(pkt[96:], peerPort(peer))

			s.mu.Lock()
			sl := &s.slots[idx]
			sl.gen++
			sl.busy = true
			sl.phase = p
			sent = nowNs()
			sl.sent = sent
			tid := uint32(idx)<<20 | sl.gen&0xFFFFF
			s.mu.Unlock()
			binary.BigEndian.PutUint32(pkt[12:], tid)
			tids = append(tids, tid)
		}
		if len(idxs) == 0 {
			break
		}
		if err := s.bio.writeBatch(pkts[:len(idxs)]); err != nil {
			// free what is still waiting (a part of the batch may have gone out and been answered)
			for k, idx := range idxs {
				s.mu.Lock()
				sl := &s.slots[idx]
				if sl.busy && sl.gen&0xFFFFF == tids[k]&0xFFFFF {
					sl.busy = false
					sl.gen++
					s.mu.Unlock()
					p.recordError(sent, false)
					s.free <- idx
				} else {
					s.mu.Unlock()
				}
			}
			if !u.closed.Load() {
				time.Sleep(time.Millisecond) // e.g. ECONNREFUSED: don't spin
			}
		}
	}
	// drain: wait until every request of this socket is answered or timed out
	held := make([]int, 0, len(s.slots))
	for len(held) < len(s.slots) {
		held = append(held, <-s.free)
	}
	for _, i := range held {
		s.free <- i
	}
}

func (u *udpEngine) close() {
	if u.closed.Swap(true) {
		return
	}
	close(u.done)
	for _, s := range u.socks {
		s.conn.Close()
	}
}
