//go:build !linux

package link

import (
	"errors"
	"time"
)

// pollState: Linux only; elsewhere a port is read through the serial
// library, reads wake per chunk and silences are time.Sleep.
type pollState struct{}

func (l *Line) initPoll(int)                  {}
func (l *Line) closePoll()                    {}
func (l *Line) polled() bool                  { return false }
func (l *Line) setMin(int)                    {}
func (l *Line) sleepExact(time.Duration) bool { return false }

func (l *Line) readPolled([]byte, int, time.Time) (int, error) { return 0, errors.ErrUnsupported }
func (l *Line) readTTY([]byte) (int, error)                    { return 0, errors.ErrUnsupported }
