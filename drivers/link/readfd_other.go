//go:build !unix

package link

import "syscall"

func readFD(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }
