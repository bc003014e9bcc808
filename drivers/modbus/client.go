package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	gmodbus "github.com/goburrow/modbus"

	"tidegate/drivers/link"
	pmodbus "tidegate/protocol/modbus"
	"tidegate/reading"
)

// maxGap is how many unused registers a merged read may bridge: two bytes
// each on the wire, against a whole extra round trip for a separate read.
const maxGap = 8

// Meter is one Modbus meter on a bus.
type Meter struct {
	ID      string
	Address byte
	Profile *pmodbus.Profile
}

// Client is a Modbus master on one bus. Use it from one goroutine at a time.
type Client struct {
	Counters Counters

	line     line                      // serial, a TCP converter, or a Modbus TCP connection
	rtu      *gmodbus.RTUClientHandler // the packager only: framing, CRC, verification
	tcp      *gmodbus.TCPClientHandler // Modbus TCP (MBAP): the packager only (transaction ids)
	client   gmodbus.Client
	withRaw  bool
	lastResp []byte
}

// Open opens an RTU bus (serial device, or a TCP converter carrying RTU
// frames), or with mbap true, a Modbus TCP gateway.
func Open(cfg link.Config, mbap bool, timeout time.Duration) (*Client, error) {
	if mbap {
		if cfg.TCP == "" {
			return nil, fmt.Errorf("modbus tcp: no host:port given")
		}
		cfg.Device = ""
	}
	l, err := link.Open(cfg)
	if err != nil {
		if mbap {
			return nil, fmt.Errorf("modbus tcp %s: %w", cfg.TCP, err)
		}
		return nil, err
	}
	return newClient(l, mbap, timeout), nil
}

// newClient puts the packager and transporter on a line (a *link.Line, or
// the tests' in-memory one).
func newClient(l line, mbap bool, timeout time.Duration) *Client {
	c := &Client{line: l}
	if mbap {
		c.tcp = gmodbus.NewTCPClientHandler("")
		c.client = gmodbus.NewClient2(c.tcp, &recorder{t: newMBAPTransporter(l, timeout, &c.Counters), c: c})
		return c
	}
	c.rtu = gmodbus.NewRTUClientHandler("")
	c.client = gmodbus.NewClient2(c.rtu, &recorder{t: newTransporter(l, timeout, &c.Counters), c: c})
	return c
}

// line is a *link.Line as the client uses it.
type line interface {
	mbapWire
	Close() error
}

// recorder keeps the last answer so a reading can carry its raw bytes.
type recorder struct {
	t gmodbus.Transporter
	c *Client
}

func (r *recorder) Send(req []byte) ([]byte, error) {
	resp, err := r.t.Send(req)
	if r.c.withRaw && err == nil {
		r.c.lastResp = append(r.c.lastResp, resp...)
	}
	return resp, err
}

// Close closes the bus.
func (c *Client) Close() error {
	return c.line.Close()
}

func (c *Client) setSlave(a byte) {
	if c.tcp != nil {
		c.tcp.SlaveId = a
	} else {
		c.rtu.SlaveId = a
	}
}

// ReadRegisters reads count registers from start with the given function.
func (c *Client) ReadRegisters(slave, function byte, start, count uint16) ([]uint16, error) {
	c.setSlave(slave)
	var b []byte
	var err error
	if function == pmodbus.FuncReadInputRegisters {
		b, err = c.client.ReadInputRegisters(start, count)
	} else {
		b, err = c.client.ReadHoldingRegisters(start, count)
	}
	if err != nil {
		var me *gmodbus.ModbusError
		if errors.As(err, &me) {
			return nil, &pmodbus.ExceptionError{Function: me.FunctionCode &^ 0x80, Code: me.ExceptionCode}
		}
		return nil, err
	}
	if len(b) != 2*int(count) {
		return nil, fmt.Errorf("slave %d: %d bytes for %d registers", slave, len(b), count)
	}
	regs := make([]uint16, count)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return regs, nil
}

// WriteRegister writes one holding register (FC06).
func (c *Client) WriteRegister(slave byte, addr, value uint16) error {
	c.setSlave(slave)
	_, err := c.client.WriteSingleRegister(addr, value)
	return err
}

// Poll reads every quantity of the meter's profile in the fewest requests
// the device allows and returns it as a canonical reading.
func (c *Client) Poll(ctx context.Context, m Meter, raw bool) (reading.Reading, error) {
	p := m.Profile
	c.withRaw, c.lastResp = raw, nil
	regs := pmodbus.RegisterMap{}
	for _, sp := range pmodbus.Merge(p.ReadSpans(), p.MaxRegisters, maxGap) {
		if err := ctx.Err(); err != nil {
			return reading.Reading{}, link.NotSent(err)
		}
		r, err := c.ReadRegisters(m.Address, p.Function, sp.Start, sp.Count)
		if err != nil {
			return reading.Reading{}, fmt.Errorf("meter %s: read %d+%d: %w", m.ID, sp.Start, sp.Count, err)
		}
		regs.Put(sp.Start, r)
	}
	v, err := p.Decode(regs)
	if err != nil {
		return reading.Reading{}, fmt.Errorf("meter %s: %w", m.ID, err)
	}
	r := ToReading(m.ID, v)
	r.Received = time.Now()
	if raw {
		r.Raw = c.lastResp
	}
	return r, nil
}

// ToReading maps decoded profile values onto the canonical reading.
func ToReading(id string, v pmodbus.Values) reading.Reading {
	r := reading.Reading{Meter: id, Status: v.Status, Quality: reading.QualityGood}
	set := func(q string, f reading.Field, dst *float64) {
		if x, ok := v.Numbers[q]; ok {
			*dst = x
			r.Has |= f
		}
	}
	set(pmodbus.QForward, reading.HasForward, &r.Forward)
	set(pmodbus.QReverse, reading.HasReverse, &r.Reverse)
	set(pmodbus.QNet, reading.HasNet, &r.Net)
	set(pmodbus.QFlow, reading.HasFlow, &r.Flow)
	set(pmodbus.QTemperature, reading.HasTemperature, &r.Temperature)
	if b, ok := v.Numbers[pmodbus.QBattery]; ok {
		r.BatteryMV = uint16(min(max(b, 0), 65535))
		r.Has |= reading.HasBattery
	}
	if r.Has&reading.HasNet == 0 && r.Has&(reading.HasForward|reading.HasReverse) == reading.HasForward|reading.HasReverse {
		r.Net = r.Forward - r.Reverse
		r.Has |= reading.HasNet
	}
	if r.Has&reading.HasFlow != 0 && r.Flow < 0 {
		r.Status |= reading.StatusReverseFlow
	}
	return r
}

// Probe asks slave for one register and reports whether a Modbus device
// answered at all: registers or an exception both prove one is there.
func (c *Client) Probe(slave, function byte, addr uint16) (bool, error) {
	_, err := c.ReadRegisters(slave, function, addr, 1)
	var xe *pmodbus.ExceptionError
	switch {
	case err == nil, errors.As(err, &xe):
		return true, nil
	case errors.Is(err, link.ErrTimeout):
		return false, nil
	}
	return false, err
}
