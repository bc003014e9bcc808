package link

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// serialRS485 is struct serial_rs485 from <linux/serial.h>; x/sys has no
// definition of it, so it is declared here with the kernel's layout.
type serialRS485 struct {
	Flags              uint32
	DelayRTSBeforeSend uint32
	DelayRTSAfterSend  uint32
	Padding            [5]uint32
}

// tiocsrs485 is the system's request number: tty ioctls are numbered per
// architecture (MIPS encodes them as _IOWR, 0xC020542F, where 0x5470 is
// TIOCPKT), and x/sys carries each one from the kernel's headers.
const tiocsrs485 = unix.TIOCSRS485

const (
	serRS485Enabled     = 1 << 0
	serRS485RTSOnSend   = 1 << 1
	serRS485RTSAfterSnd = 1 << 2
)

// enableRS485 switches the UART into the kernel's RS-485 mode (driver
// enable on RTS while sending) for boards whose transceiver needs it. It is
// done on a separate descriptor before go.bug.st/serial opens the port.
func enableRS485(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	conf := serialRS485{Flags: serRS485Enabled | serRS485RTSOnSend}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(tiocsrs485), uintptr(unsafe.Pointer(&conf)))
	if errno != 0 {
		return fmt.Errorf("TIOCSRS485: %w", errno)
	}
	return nil
}
