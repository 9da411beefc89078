//go:build !(linux && amd64) || nommsg

package main

import "net"

const maxBatch = 32

// batchIO falls back to one datagram per system call off linux/amd64.
type batchIO struct{ c *net.UDPConn }

func newBatchIO(c *net.UDPConn) (*batchIO, error) { return &batchIO{c: c}, nil }

func (b *batchIO) readBatch(bufs [][]byte, lens []int) (int, error) {
	n, err := b.c.Read(bufs[0])
	if err != nil {
		return 0, err
	}
	lens[0] = n
	return 1, nil
}

func (b *batchIO) writeBatch(pkts [][]byte) error {
	for _, p := range pkts {
		if _, err := b.c.Write(p); err != nil {
			return err
		}
	}
	return nil
}
