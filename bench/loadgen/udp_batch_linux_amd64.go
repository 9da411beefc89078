//go:build linux && amd64 && !nommsg

package main

// Batched UDP I/O with recvmmsg/sendmmsg through the raw socket (standard library syscall
// package only): one system call moves many datagrams, which keeps the load generator well
// below one core while it saturates a Node server on the other.

import (
	"net"
	"syscall"
	"unsafe"
)

const (
	sysRecvmmsg = syscall.SYS_RECVMMSG
	sysSendmmsg = 307 // not in package syscall for amd64
	maxBatch    = 32
)

type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

type batchIO struct {
	raw   syscall.RawConn
	rmsgs [maxBatch]mmsghdr
	riov  [maxBatch]syscall.Iovec
	wmsgs [maxBatch]mmsghdr
	wiov  [maxBatch]syscall.Iovec
}

func newBatchIO(c *net.UDPConn) (*batchIO, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &batchIO{raw: raw}, nil
}

// readBatch receives up to len(bufs) datagrams (at least one, blocking) into bufs and their
// lengths into lens.
func (b *batchIO) readBatch(bufs [][]byte, lens []int) (int, error) {
	n := len(bufs)
	if n > maxBatch {
		n = maxBatch
	}
	for i := 0; i < n; i++ {
		b.riov[i].Base = &bufs[i][0]
		b.riov[i].SetLen(len(bufs[i]))
		b.rmsgs[i] = mmsghdr{}
		b.rmsgs[i].hdr.Iov = &b.riov[i]
		b.rmsgs[i].hdr.Iovlen = 1
	}
	var got int
	var serr error
	err := b.raw.Read(func(fd uintptr) bool {
		r, _, e := syscall.Syscall6(sysRecvmmsg, fd, uintptr(unsafe.Pointer(&b.rmsgs[0])), uintptr(n), syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EAGAIN || e == syscall.EINTR {
			return false // wait for readability
		}
		if e != 0 {
			serr = e
			return true
		}
		got = int(r)
		return true
	})
	if err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	for i := 0; i < got; i++ {
		lens[i] = int(b.rmsgs[i].n)
	}
	return got, nil
}

// writeBatch sends every packet, in as few system calls as the kernel allows.
func (b *batchIO) writeBatch(pkts [][]byte) error {
	for len(pkts) > 0 {
		n := len(pkts)
		if n > maxBatch {
			n = maxBatch
		}
		for i := 0; i < n; i++ {
			b.wiov[i].Base = &pkts[i][0]
			b.wiov[i].SetLen(len(pkts[i]))
			b.wmsgs[i] = mmsghdr{}
			b.wmsgs[i].hdr.Iov = &b.wiov[i]
			b.wmsgs[i].hdr.Iovlen = 1
		}
		sent := 0
		var serr error
		err := b.raw.Write(func(fd uintptr) bool {
			for sent < n {
				r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&b.wmsgs[sent])), uintptr(n-sent), 0, 0, 0)
				if e == syscall.EAGAIN {
					return false // wait for writability
				}
				if e == syscall.EINTR {
					continue
				}
				if e != 0 {
					serr = e
					return true
				}
				sent += int(r)
			}
			return true
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		pkts = pkts[n:]
	}
	return nil
}
