//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package link

const tiocsrs485 = 0x542F
