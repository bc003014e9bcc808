package mbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"tidegate/drivers/link"
	"tidegate/reading"
)

// Meter is one configured M-Bus meter. With Secondary set the meter is read
// by secondary address (select, then address 253); otherwise by Address.
type Meter struct {
	ID        string
	Address   byte
	Secondary string // 8 id digits or 16 hex digits (id, manufacturer, version, medium)
	// Location is the zone the meter's clock keeps (nil: the gateway's
	// local zone): its date-times are wall clock with a summer-time bit.
	Location *time.Location
}

// Client is an M-Bus master on its own line, the shape the bus scheduler
// polls: one call per meter read, returning the canonical reading.
type Client struct {
	*Master
	line   Line
	inited map[string]bool
}

// Open opens the line and prepares a master on it.
func Open(cfg link.Config, opt Options) (*Client, error) {
	l, err := link.Open(cfg)
	if err != nil {
		return nil, err
	}
	return NewClient(l, opt), nil
}

// NewClient is a client on a line already open.
func NewClient(l Line, opt Options) *Client {
	return &Client{Master: NewMaster(l, opt, nil), line: l, inited: map[string]bool{}}
}

// Close closes the line, if it can be closed.
func (c *Client) Close() error {
	if cl, ok := c.line.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Poll reads a meter; on failure the reading is marked QualityError with
// the reason, and the error says what happened (errors.Is with ErrTimeout,
// ErrChecksum, ...). An error that is none of those is the line's own
// (device gone): the caller should reopen.
func (c *Client) Poll(ctx context.Context, m Meter, raw bool) (reading.Reading, error) {
	res, err := c.PollResult(ctx, m, raw)
	return res.Reading, err
}

// PollResult is Poll with the due-date value and the header as well.
func (c *Client) PollResult(ctx context.Context, m Meter, raw bool) (Result, error) {
	wasInited := c.inited[m.ID]
	res, err := c.poll(ctx, m, raw)
	if err != nil {
		// Start the meter's link layer afresh next time (after a lost
		// answer the FCB may be out of step), unless this poll did just
		// that and failed: then the next goes straight to REQ_UD2, for
		// meters that ignore SND_NKE.
		if wasInited {
			delete(c.inited, m.ID)
		}
		res.Reading.Meter, res.Reading.Received = m.ID, time.Now()
		res.Reading.Quality, res.Reading.Error = reading.QualityError, err.Error()
	}
	return res, err
}

func (c *Client) poll(ctx context.Context, m Meter, raw bool) (Result, error) {
	var ts []Telegram
	var err error
	if m.Secondary != "" {
		p, perr := ParsePattern(m.Secondary)
		if perr != nil {
			return Result{}, fmt.Errorf("meter %s: %w", m.ID, perr)
		}
		s := p.secondary()
		if !c.inited[m.ID] {
			// Reset the selected meter's link layer. A silent meter is
			// not asked twice in one poll: one timeout per poll at most.
			c.inited[m.ID] = true
			switch r, _, err := c.selectPattern(ctx, p, true, 0); {
			case err != nil:
				return Result{}, err
			case r == ProbeNone:
				c.c.Timeouts.Add(1)
				return Result{}, fmt.Errorf("meter %s: select %s: %w", m.ID, p, ErrTimeout)
			case r == ProbeOne:
				_ = c.Init(ctx, 0xFD)
			}
		}
		ts, err = c.readSelected(ctx, p, s)
	} else {
		if !c.inited[m.ID] {
			c.inited[m.ID] = true
			if err := c.Init(ctx, m.Address); err != nil {
				return Result{}, fmt.Errorf("meter %s: SND_NKE: %w", m.ID, err)
			}
		}
		ts, err = c.ReadPrimary(ctx, m.Address)
	}
	if err != nil {
		return Result{}, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	return DecodeIn(m.ID, ts, time.Now(), raw, m.Location)
}

// isMeterError tells a meter's failure (which the scheduler retries) from
// the line's (which needs a reopen).
func isMeterError(err error) bool {
	for _, e := range []error{ErrTimeout, ErrChecksum, ErrTruncated, ErrWrongAddress, ErrWrongMeter, ErrCollision, ErrUnexpected, ErrEcho, ErrNoVolume} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// IsMeterError reports whether err is a meter's failure (no answer, garbled
// or foreign answer), not the line's.
func IsMeterError(err error) bool { return isMeterError(err) }
