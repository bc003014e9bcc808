package buffer

import (
	"bufio"
	"encoding/json"
	"io"

	"tidegate/reading"
)

// Export writes the records held with from <= Seq <= to as JSON lines, in
// order, in the record's one encoding (reading.RecordJSON, as the uplink
// sends it, without the gateway's id); to == 0 means up to the last.
// Acknowledged records are gone and are not exported.
func (b *Buffer) Export(w io.Writer, from, to uint64) error { return b.ExportAs(w, "", from, to) }

// ExportAs is Export with each record's id as gateway gives it: byte for
// byte what the uplink sends. The file does not know its gateway; the
// caller must (a file copied from another box carries that box's seqs).
func (b *Buffer) ExportAs(w io.Writer, gateway string, from, to uint64) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	after := uint64(0)
	if from > 0 {
		after = from - 1
	}
	for {
		recs, err := b.Read(after, DefaultReadMax)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if to != 0 && r.Seq > to {
				return bw.Flush()
			}
			if err := enc.Encode(reading.ToJSON(gateway, r)); err != nil {
				return err
			}
		}
		after = recs[len(recs)-1].Seq
	}
	return bw.Flush()
}
