package mbus

import "fmt"

// MaxRecords bounds the records of one telegram; a long frame holds at most
// 252 data bytes, so more than that cannot occur and signals a bug.
const MaxRecords = 256

// Record is one data record of a variable data telegram, or the
// manufacturer-specific data after DIF 0F/1F.
type Record struct {
	// DIB is the DIF and DIFEs as sent; VIB the VIF, VIFEs and a plain-text
	// unit as sent (empty for DIF 0F/1F). Both are slices of the input, and
	// both are empty for the counters of a fixed data structure (CI 73/77).
	DIB, VIB []byte
	Function Function
	Storage  uint64
	Tariff   uint32
	Subunit  uint32
	// Quantity names what is measured ("volume", "flow temperature", ...).
	Quantity string
	// Unit is the base unit Value.Number is in ("m3", "Wh", "degC", ...);
	// for a plain-text VIF, the meter's own unit string.
	Unit string
	// PlainText says Unit came from a plain-text VIF (7C/FC).
	PlainText bool
	Value     Value
}

// ParseRecords decodes the data records of a variable data telegram (the
// bytes after the fixed header), in frame order. On error it returns the
// records decoded before the bad one.
func ParseRecords(data []byte) ([]Record, error) {
	return parseRecords(data, false)
}

func parseRecords(data []byte, mode2 bool) ([]Record, error) {
	// One allocation for a typical telegram: records average well over
	// 6 bytes each.
	out := make([]Record, 0, min(len(data)/6+1, MaxRecords))
	i := 0
	for i < len(data) {
		if len(out) == MaxRecords {
			return out, fmt.Errorf("%w: more than %d records", ErrBadValue, MaxRecords)
		}
		dif := data[i]
		if dif == DIFIdleFiller {
			i++
			continue
		}
		if dif&0x0F == DataSpecial {
			switch dif {
			case DIFManufacturer, DIFMoreRecords:
				f := FuncManufacturer
				if dif == DIFMoreRecords {
					f = FuncMoreRecords
				}
				out = append(out, Record{DIB: data[i : i+1], Function: f, Value: Value{Kind: ValueBytes, Bytes: data[i+1:]}})
				return out, nil
			case DIFGlobalReadout:
				out = append(out, Record{DIB: data[i : i+1], Quantity: "global readout request"})
				i++
				continue
			}
			return out, fmt.Errorf("%w: reserved DIF 0x%02X at offset %d", ErrBadValue, dif, i)
		}
		r, n, err := parseRecord(data[i:], mode2)
		if err != nil {
			return out, fmt.Errorf("record %d at offset %d: %w", len(out), i, err)
		}
		out = append(out, r)
		i += n
	}
	return out, nil
}

// parseRecord decodes one record with a normal DIF at b[0].
func parseRecord(b []byte, mode2 bool) (Record, int, error) {
	d, n, err := parseDIB(b)
	if err != nil {
		return Record{}, 0, err
	}
	v, m, err := parseVIB(b[n:])
	if err != nil {
		return Record{}, 0, err
	}
	n += m
	r := Record{
		DIB: d.raw, VIB: v.raw, Function: d.function, Storage: d.storage, Tariff: d.tariff, Subunit: d.subunit,
		Quantity: v.info.quantity, Unit: v.info.unit, PlainText: v.plainText,
	}
	if d.coding == DataVar {
		if n >= len(b) {
			return Record{}, 0, fmt.Errorf("%w: LVAR missing", ErrTruncated)
		}
		lvar := b[n]
		n++
		l, err := lvarLen(lvar)
		if err != nil {
			return Record{}, 0, err
		}
		if n+l > len(b) {
			return Record{}, 0, fmt.Errorf("%w: LVAR 0x%02X needs %d bytes, %d left", ErrTruncated, lvar, l, len(b)-n)
		}
		r.Value = decodeLVAR(lvar, b[n:n+l], v.info)
		return r, n + l, nil
	}
	l := dataLen[d.coding]
	if n+l > len(b) {
		return Record{}, 0, fmt.Errorf("%w: data field 0x%X needs %d bytes, %d left", ErrTruncated, d.coding, l, len(b)-n)
	}
	field := b[n : n+l]
	var buf [8]byte
	if mode2 {
		for j := range field {
			buf[l-1-j] = field[j]
		}
		field = buf[:l]
	}
	r.Value, err = decodeData(d.coding, field, v.info)
	if err != nil {
		return Record{}, 0, err
	}
	return r, n + l, nil
}
