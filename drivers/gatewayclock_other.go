//go:build !linux

package drivers

import "errors"

// kernelClock elsewhere than Linux cannot tell: a meter clock is never set.
type kernelClock struct{}

func (kernelClock) Synchronized() (bool, error) {
	return false, errors.New("the clock's synchronisation state is known on Linux only")
}
