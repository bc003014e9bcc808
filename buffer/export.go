package buffer

import (
	"bufio"
	"encoding/json"
	"io"

	"tidegate/reading"
)

// exportRecord is one JSONL line of Export: the record with its kind
// spelled out, so the file is readable without this package.
type exportRecord struct {
	Seq     uint64                `json:"seq"`
	Kind    string                `json:"kind"`
	Reading *reading.Reading      `json:"reading,omitempty"`
	Summary *reading.DailySummary `json:"summary,omitempty"`
	Event   *reading.Event        `json:"event,omitempty"`
}

// Export writes the records held with from <= Seq <= to as JSON lines, in
// order; to == 0 means up to the last. Acknowledged records are gone and
// are not exported.
func (b *Buffer) Export(w io.Writer, from, to uint64) error {
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
			if err := enc.Encode(exportRecord{Seq: r.Seq, Kind: r.Kind.String(), Reading: r.Reading, Summary: r.Summary, Event: r.Event}); err != nil {
				return err
			}
		}
		after = recs[len(recs)-1].Seq
	}
	return bw.Flush()
}
