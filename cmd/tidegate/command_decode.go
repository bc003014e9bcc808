package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"tidegate/protocol/mbus"
)

// maxDecodeInput bounds what `decode mbus -` reads: a long frame is 261
// bytes, as hex with separators well under 1 KiB.
const maxDecodeInput = 64 << 10

// runDecode decodes one wire frame given as hex: decode mbus|cjt188 [HEX|-].
func runDecode(ctx context.Context, e *env, args []string) error {
	if wantsHelp(args) {
		return helpFor(e, "decode mbus")
	}
	if len(args) != 2 || (args[0] != "mbus" && args[0] != "cjt188") {
		return usageErrorf("usage: tidegate decode mbus|cjt188 HEX|-   (one frame as hex, '-' reads it from standard input)")
	}
	raw, err := decodeInput(e, args[1])
	if err != nil {
		return err
	}
	if args[0] == "cjt188" {
		return decodeCJT188(e, raw)
	}
	f, n, err := mbus.Decode(raw)
	if err != nil {
		return usageError(err)
	}
	if n != len(raw) {
		return usageErrorf("%d bytes after the end of the frame", len(raw)-n)
	}
	out := decodedFrame{Frame: f.Kind.String(), C: hexByte(byte(f.C)), Address: f.Address}
	if f.Kind == mbus.KindLong || f.Kind == mbus.KindControl {
		tg, err := mbus.DecodeTelegram(f)
		if err != nil {
			return usageError(err)
		}
		out.fill(tg)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// decodeInput is the frame's bytes from hex given as argument or on stdin ("-").
func decodeInput(e *env, text string) ([]byte, error) {
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxDecodeInput+1))
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		if len(b) > maxDecodeInput {
			return nil, usageErrorf("input longer than %d bytes; one frame is at most 261 bytes", maxDecodeInput)
		}
		text = string(b)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return nil, usageErrorf("bad hex: %v", err)
	}
	return raw, nil
}

// decodedFrame is the JSON of `tidegate decode mbus`.
type decodedFrame struct {
	Frame             string          `json:"frame"`
	C                 string          `json:"c"`
	Address           byte            `json:"address"`
	CI                string          `json:"ci,omitempty"`
	ID                string          `json:"id,omitempty"`
	Manufacturer      string          `json:"manufacturer,omitempty"`
	Version           *byte           `json:"version,omitempty"`
	Medium            string          `json:"medium,omitempty"`
	AccessNumber      *byte           `json:"access_number,omitempty"`
	Status            *byte           `json:"status,omitempty"`
	Signature         *uint16         `json:"signature,omitempty"`
	MoreRecordsFollow bool            `json:"more_records_follow,omitempty"`
	Records           []decodedRecord `json:"records,omitempty"`
}

type decodedRecord struct {
	Value    any    `json:"value"`
	Invalid  bool   `json:"invalid,omitempty"`
	Unit     string `json:"unit"`
	Quantity string `json:"quantity"`
	Storage  uint64 `json:"storage"`
	Tariff   uint32 `json:"tariff"`
	Subunit  uint32 `json:"subunit"`
	Function string `json:"function"`
	DIF      string `json:"dif"`
	VIF      string `json:"vif"`
}

func (d *decodedFrame) fill(tg mbus.Telegram) {
	h := tg.Header
	d.CI = hexByte(tg.CI)
	d.ID, d.Manufacturer = h.ID, h.Manufacturer
	d.AccessNumber, d.Status, d.Signature = &h.AccessNumber, &h.Status, &h.Signature
	if h.Long {
		d.Version = &h.Version
		d.Medium = h.Medium.String()
	}
	if tg.CI == mbus.CIFixed || tg.CI == mbus.CIFixedMode2 {
		d.Medium = h.Medium.String()
		d.Signature = nil
	}
	d.MoreRecordsFollow = tg.MoreRecordsFollow
	d.Records = make([]decodedRecord, 0, len(tg.Records))
	for _, r := range tg.Records {
		d.Records = append(d.Records, decodedRecord{
			Value: jsonValue(r.Value), Invalid: r.Value.Invalid, Unit: r.Unit, Quantity: r.Quantity,
			Storage: r.Storage, Tariff: r.Tariff, Subunit: r.Subunit, Function: r.Function.String(),
			DIF: hexSpaced(r.DIB), VIF: hexSpaced(r.VIB),
		})
	}
}

// jsonValue is a number, a string (dates, times, text, raw bytes as hex
// pairs in frame order) or null for a record without data.
func jsonValue(v mbus.Value) any {
	switch v.Kind {
	case mbus.ValueNumber:
		return v.Number
	case mbus.ValueDate, mbus.ValueDateTime, mbus.ValueTime, mbus.ValueText:
		return v.Text
	case mbus.ValueBytes:
		return hexSpaced(v.Bytes)
	}
	return nil
}

func hexByte(b byte) string { return strings.ToUpper(hex.EncodeToString([]byte{b})) }

// hexSpaced prints bytes as upper-case pairs separated by spaces.
func hexSpaced(b []byte) string {
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(hexByte(x))
	}
	return sb.String()
}
