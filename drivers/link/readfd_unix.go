//go:build unix

package link

import "syscall"

func readFD(fd uintptr, buf []byte) (int, error) {
	n, err := syscall.Read(int(fd), buf)
	return max(n, 0), err
}
