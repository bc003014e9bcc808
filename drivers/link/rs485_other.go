//go:build !linux

package link

import "errors"

// enableRS485 is Linux-only: elsewhere the transceiver must switch by itself.
func enableRS485(string) error { return errors.New("kernel RS-485 mode needs Linux") }
