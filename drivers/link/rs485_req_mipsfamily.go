//go:build linux && (mips || mipsle || mips64 || mips64le)

package link

// MIPS numbers its tty ioctls differently (asm/ioctls.h).
const tiocsrs485 = 0x5470
