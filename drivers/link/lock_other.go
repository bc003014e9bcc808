//go:build !linux

package link

// portLock is Linux-only; elsewhere the serial library's own exclusive
// open is all there is.
type portLock struct{}

func lockPort(dev, dir string) (*portLock, error) { return nil, nil }

func (l *portLock) release() {}

func (l *portLock) reader() int { return -1 }

func (l *portLock) fileError() error { return nil }
