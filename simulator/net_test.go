package simulator

import (
	"io"
	"net"
)

func netDial(addr string) (net.Conn, error)         { return net.Dial("tcp", addr) }
func ioReadFull(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }
