//go:build !linux

package simulator

import "os"

// masterBaud: only Linux's pty is known to keep the far end's baud.
func masterBaud(*os.File) int { return 0 }
