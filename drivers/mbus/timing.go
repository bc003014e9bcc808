package mbus

import (
	"time"

	"tidegate/drivers/link"
)

// AnswerTimeout is how long a slave may take to start its answer: EN 13757-2
// allows 330 bit times after the request's last bit, plus 11 bit times for the
// stop of the last character, plus a 50 ms allowance for repeaters and UARTs.
// Real meters are often slower, hence Options.Timeout.
func AnswerTimeout(c link.Config) time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 2400
	}
	return time.Duration(11+330)*time.Second/time.Duration(baud) + 50*time.Millisecond
}

// Guard ends an answer: a frame that stalls for 11 bit times plus 50 ms
// (the slack AnswerTimeout gives repeaters and UARTs) is over, and a
// selection's E5s are all in once the line has been quiet that long.
func Guard(c link.Config) time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 2400
	}
	return 11*time.Second/time.Duration(baud) + 50*time.Millisecond
}

// Idle is the silence kept before each request, counted from the last
// byte on the wire: EN 13757-2's 11 bit times between frames. The meter's
// own turnaround is part of its answer time, not a wait of the master.
func Idle(c link.Config) time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 2400
	}
	return 11 * time.Second / time.Duration(baud)
}
