package simulator

import (
	"sync"
	"time"

	"tidegate/protocol/modbus"
)

// ModbusMeter is a Modbus RTU slave whose registers follow a profile and
// whose values come from its water model.
type ModbusMeter struct {
	ID      string
	Profile *modbus.Profile
	state   SnapshotFunc
	start   time.Time

	mu      sync.Mutex
	address byte
	banks   []modbus.Span // readable address ranges; outside them: exception 02
	written modbus.RegisterMap
}

// NewModbusMeter makes a slave at address (1..247) with the profile's map.
func NewModbusMeter(id string, address byte, p *modbus.Profile, state SnapshotFunc, start time.Time) *ModbusMeter {
	return &ModbusMeter{
		ID: id, Profile: p, state: state, start: start, address: address,
		// Registers between a profile's quantities read as zero, as on real
		// meters, so a master may bridge small gaps; far away is an error.
		banks:   modbus.Merge(p.Spans(), 0xFFFF, 16),
		written: modbus.RegisterMap{},
	}
}

// Address is the slave address, which a write to slave_id changes.
func (m *ModbusMeter) Address() byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.address
}

// Registers is the meter's register bank at simulation time now.
func (m *ModbusMeter) Registers(now time.Time) modbus.RegisterMap {
	s := m.state(now)
	v := modbus.Values{Numbers: map[string]float64{
		modbus.QForward:     s.Forward,
		modbus.QReverse:     s.Reverse,
		modbus.QNet:         s.Forward - s.Reverse,
		modbus.QFlow:        s.Flow,
		modbus.QTemperature: s.Temperature,
		modbus.QBattery:     float64(s.BatteryMV),
		modbus.QSlaveID:     float64(m.address),
		"run_time":          now.Sub(m.start).Seconds(),
	}, Status: s.Status}
	regs, _ := m.Profile.Encode(v) // profiles are validated at load; Encode only fails on bad types
	for a, r := range m.written {
		regs[a] = r
	}
	return regs
}

func (m *ModbusMeter) readable(addr, n uint16) bool {
	end := int(addr) + int(n)
	for _, b := range m.banks {
		if int(addr) >= int(b.Start) && end <= int(b.Start)+int(b.Count) {
			return true
		}
	}
	return false
}

// Respond answers requests addressed to this slave; broadcasts (address 0)
// are acted on without an answer, as the specification requires.
func (m *ModbusMeter) Respond(frame []byte, now time.Time) []byte {
	req, err := modbus.ParseRequest(frame)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || (req.Slave != m.address && req.Slave != 0) {
		// A slave ignores frames with a bad CRC or another address.
		return nil
	}
	exception := func(code byte) []byte {
		if req.Slave == 0 {
			return nil
		}
		return modbus.ExceptionResponse(m.address, req.Function, code)
	}
	switch req.Function {
	case modbus.FuncReadHoldingRegisters, modbus.FuncReadInputRegisters:
		if req.Function != m.Profile.Function {
			return exception(modbus.ExceptionIllegalFunction)
		}
		if int(req.Quantity) > m.Profile.MaxRegisters {
			return exception(modbus.ExceptionIllegalDataValue)
		}
		if !m.readable(req.Address, req.Quantity) {
			return exception(modbus.ExceptionIllegalDataAddress)
		}
		m.mu.Unlock()
		bank := m.Registers(now)
		m.mu.Lock()
		out := make([]uint16, req.Quantity)
		for i := range out {
			out[i] = bank[req.Address+uint16(i)]
		}
		if req.Slave == 0 {
			return nil
		}
		return modbus.ReadResponse(m.address, req.Function, out)
	case modbus.FuncWriteSingleRegister, modbus.FuncWriteMultipleRegisters:
		for i, v := range req.Values {
			r := m.writable(req.Address + uint16(i))
			if r == nil {
				return exception(modbus.ExceptionIllegalDataAddress)
			}
			if r.Quantity == modbus.QSlaveID && (v < 1 || v > 247) {
				return exception(modbus.ExceptionIllegalDataValue)
			}
		}
		reply := modbus.WriteResponse(modbus.Request{Slave: m.address, Function: req.Function, Address: req.Address, Quantity: req.Quantity, Values: req.Values})
		for i, v := range req.Values {
			addr := req.Address + uint16(i)
			if m.writable(addr).Quantity == modbus.QSlaveID {
				m.address = byte(v) // the answer still comes from the old address
				continue
			}
			m.written[addr] = v
		}
		if req.Slave == 0 {
			return nil
		}
		return reply
	}
	return exception(modbus.ExceptionIllegalFunction)
}

func (m *ModbusMeter) writable(addr uint16) *modbus.Register {
	for i := range m.Profile.Registers {
		r := &m.Profile.Registers[i]
		if r.Writable && r.Parts[0].Address == addr {
			return r
		}
	}
	return nil
}
