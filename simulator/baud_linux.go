package simulator

import (
	"os"

	"golang.org/x/sys/unix"
)

var speeds = map[uint32]int{
	unix.B300: 300, unix.B600: 600, unix.B1200: 1200, unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600,
	unix.B19200: 19200, unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
	unix.B460800: 460800, unix.B921600: 921600,
}

// masterBaud is the baud rate the far end of the pty set on its side, read
// from the master (the pty keeps it although it ignores it); 0 when unknown.
func masterBaud(master *os.File) int {
	rc, err := master.SyscallConn()
	if err != nil {
		return 0
	}
	var t *unix.Termios
	// Control, not Fd(): Fd() would switch the master back to blocking.
	_ = rc.Control(func(fd uintptr) { t, err = unix.IoctlGetTermios(int(fd), unix.TCGETS2) })
	if err != nil || t == nil {
		return 0
	}
	if c := t.Cflag & unix.CBAUD; c == unix.BOTHER {
		return int(t.Ospeed)
	} else {
		return speeds[c]
	}
}
