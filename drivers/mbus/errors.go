package mbus

import (
	"errors"

	"tidegate/drivers/link"
)

// Errors a transaction can end with; the bus counts each kind apart.
var (
	ErrTimeout      = link.Kind("mbus: no answer", link.ErrNoAnswer)
	ErrChecksum     = errors.New("mbus: garbled answer")
	ErrTruncated    = errors.New("mbus: truncated answer")
	ErrWrongAddress = errors.New("mbus: answer from another address")
	ErrWrongMeter   = errors.New("mbus: answer from another meter")
	ErrCollision    = errors.New("mbus: several meters answered")
	ErrUnexpected   = errors.New("mbus: unexpected answer")
	ErrEcho         = errors.New("mbus: echo does not match the request")
)
