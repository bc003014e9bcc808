//go:build !linux

package drivers

import "errors"

// KernelClock elsewhere than Linux cannot tell: a meter clock is never set.
type KernelClock struct{}

func (KernelClock) Synchronized() (bool, error) {
	return false, errors.New("the clock's synchronisation state is known on Linux only")
}
