package cjt188

import (
	"errors"

	"tidegate/drivers/link"
)

// Errors a transaction can end with; the bus counts each kind apart. A
// codec error (protocol/cjt188's ErrChecksum...) is wrapped by the one that
// says what the master made of it.
var (
	ErrTimeout   = link.Kind("cjt188: no answer", link.ErrNoAnswer)
	ErrGarbled   = errors.New("cjt188: garbled answer")
	ErrTruncated = errors.New("cjt188: truncated answer")
	ErrForeign   = errors.New("cjt188: answer from another meter")
	ErrRefused   = errors.New("cjt188: the meter refused (error reply)")
	ErrCollision = errors.New("cjt188: several meters answered at once")
	ErrNoVolume  = errors.New("cjt188: reply carries no volume")
	ErrNoValve   = errors.New("cjt188: meter has no valve control configured")
)
