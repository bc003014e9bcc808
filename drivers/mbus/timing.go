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

// Guard is the silence kept before each request: 11 bit times plus 50 ms
// turnaround for the slave (and any converter) to release the line. It also
// ends an answer: a frame that stalls this long is over.
func Guard(c link.Config) time.Duration {
	baud := c.Baud
	if baud <= 0 {
		baud = 2400
	}
	return 11*time.Second/time.Duration(baud) + 50*time.Millisecond
}
