package daemon

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads SO_PEERCRED: the uid, gid and pid the kernel recorded when
// the caller connected.
func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return peer{}
	}
	return peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid, Known: true}
}
