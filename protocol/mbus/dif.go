package mbus

import "fmt"

// MaxExtensions bounds DIFE and VIFE chains (EN 13757-3 allows 10 each).
const MaxExtensions = 10

// Special DIF values (data field 0xF).
const (
	// DIFManufacturer starts manufacturer-specific data up to the end.
	DIFManufacturer byte = 0x0F
	// DIFMoreRecords is DIFManufacturer plus "more records follow in the
	// next telegram".
	DIFMoreRecords byte = 0x1F
	// DIFIdleFiller is a padding byte between records.
	DIFIdleFiller byte = 0x2F
	// DIFGlobalReadout is a master's request for all storages and tariffs.
	DIFGlobalReadout byte = 0x7F
)

// Function is the DIF function field, plus two pseudo-functions for the
// manufacturer-specific data records DIF 0F and 1F.
type Function uint8

// Functions.
const (
	FuncInstantaneous Function = iota
	FuncMaximum
	FuncMinimum
	FuncError
	// FuncManufacturer marks the record of DIF 0F: bytes to the end.
	FuncManufacturer
	// FuncMoreRecords marks the record of DIF 1F: bytes to the end, and the
	// slave has another telegram.
	FuncMoreRecords
)

// String returns the name used in tidegate's JSON output.
func (f Function) String() string {
	switch f {
	case FuncInstantaneous:
		return "instantaneous"
	case FuncMaximum:
		return "maximum"
	case FuncMinimum:
		return "minimum"
	case FuncError:
		return "error"
	case FuncManufacturer:
		return "manufacturer specific"
	case FuncMoreRecords:
		return "more records follow"
	}
	return fmt.Sprintf("function(%d)", uint8(f))
}

// Data field codings (low nibble of DIF).
const (
	DataNone    byte = 0x0
	DataInt8    byte = 0x1
	DataInt16   byte = 0x2
	DataInt24   byte = 0x3
	DataInt32   byte = 0x4
	DataReal32  byte = 0x5
	DataInt48   byte = 0x6
	DataInt64   byte = 0x7
	DataReadout byte = 0x8
	DataBCD2    byte = 0x9
	DataBCD4    byte = 0xA
	DataBCD6    byte = 0xB
	DataBCD8    byte = 0xC
	DataVar     byte = 0xD
	DataBCD12   byte = 0xE
	DataSpecial byte = 0xF
)

// dataLen is the fixed length of each data field coding; -1 for LVAR.
var dataLen = [16]int{0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 0}

// dib is a decoded data information block.
type dib struct {
	raw      []byte
	coding   byte
	function Function
	storage  uint64
	tariff   uint32
	subunit  uint32
}

// parseDIB reads DIF and DIFEs at b[0:]. It does not handle DIF xF.
func parseDIB(b []byte) (dib, int, error) {
	if len(b) == 0 {
		return dib{}, 0, fmt.Errorf("%w: missing DIF", ErrTruncated)
	}
	dif := b[0]
	d := dib{coding: dif & 0x0F, function: Function(dif >> 4 & 0x03), storage: uint64(dif >> 6 & 1)}
	n := 1
	ext := dif&0x80 != 0
	for i := 0; ext; i++ {
		if i == MaxExtensions {
			return dib{}, 0, fmt.Errorf("%w: more than %d DIFEs", ErrTooManyExtensions, MaxExtensions)
		}
		if n >= len(b) {
			return dib{}, 0, fmt.Errorf("%w: DIFE %d missing", ErrTruncated, i+1)
		}
		dife := b[n]
		n++
		// Each DIFE adds 4 storage bits, 2 tariff bits and 1 subunit bit
		// above those of the previous ones.
		d.storage |= uint64(dife&0x0F) << (1 + 4*i)
		d.tariff |= uint32(dife>>4&0x03) << (2 * i)
		d.subunit |= uint32(dife>>6&0x01) << i
		ext = dife&0x80 != 0
	}
	d.raw = b[:n]
	return d, n, nil
}
