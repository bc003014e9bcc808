package uplink

import (
	"encoding/json"
	"strconv"
	"time"

	"tidegate/reading"
)

// The wire contract; schema/*.json documents it and payload_test.go checks
// that what is produced here matches the schema's required keys and types.

// wireEvent is an event message: the record's one encoding
// (reading.RecordJSON) and the gateway it came from.
type wireEvent struct {
	Gateway string `json:"gateway"`
	reading.RecordJSON
}

type wireStatus struct {
	Gateway string    `json:"gateway"`
	State   string    `json:"state"` // online | offline
	Time    time.Time `json:"time"`
	// LastSeq is at least the highest seq this gateway may have published
	// on the connection (lastseq.go): in the will too, so a gateway that
	// starts on a fresh file numbers above it.
	LastSeq uint64 `json:"last_seq,omitempty"`
	// SeqBase names the buffer file that published (its seqs start above
	// it), in the will too: a gateway finding its own file's seq_base in
	// the retained status is the same file going on, not a fresh one.
	SeqBase uint64 `json:"seq_base,omitempty"`
	StatusInfo
}

func recordID(gateway string, seq uint64) string {
	return gateway + ":" + strconv.FormatUint(seq, 10)
}

// encodeRecord renders one reading, billing read or summary as an element of
// a readings batch, in the record's one encoding (reading.ToJSON). now
// decides "historical".
func encodeRecord(gateway string, r reading.Record, now time.Time, historicalAfter time.Duration) ([]byte, error) {
	w := reading.ToJSON(gateway, r)
	w.ID, w.Seq = recordID(gateway, r.Seq), r.Seq // both always, even for seq 0
	if r.Reading != nil && !r.Reading.Received.IsZero() {
		w.Historical = w.Historical || now.Sub(r.Reading.Received) > historicalAfter
	}
	b, err := json.Marshal(w)
	if err != nil {
		// Never let one record stop the queue (it would come first again
		// after every restart): send what identifies it, and why.
		b, err = json.Marshal(reading.RecordJSON{ID: w.ID, Seq: w.Seq, Kind: w.Kind, Meter: w.Meter,
			Quality: reading.QualityError.String(), Error: "not encodable as JSON: " + err.Error()})
	}
	return b, err
}

func encodeEvent(gateway string, r reading.Record, now time.Time, historicalAfter time.Duration) ([]byte, error) {
	w := wireEvent{Gateway: gateway, RecordJSON: reading.ToJSON(gateway, r)}
	w.ID, w.Seq, w.Kind = recordID(gateway, r.Seq), r.Seq, reading.KindEvent.String()
	if w.Time == nil {
		// An event of the buffer's own about an undecodable record has no
		// time of its own: the schema wants one, and now is when it is told.
		t := now.UTC()
		w.Time = &t
	} else {
		w.Historical = now.Sub(*w.Time) > historicalAfter
	}
	if w.Type == "" {
		w.Type = "unknown"
	}
	b, err := json.Marshal(w)
	if err != nil { // e.g. a time outside years 0-9999: keep the queue moving
		t := now.UTC()
		w.Time = &t
		w.Message = "not encodable as JSON: " + err.Error()
		b, err = json.Marshal(w)
	}
	return b, err
}

// batchHead and batchTail wrap the encoded records of a readings message:
// {"gateway":"gw","batch":[rec,rec,...]}.
func batchHead(gateway string) []byte {
	g, _ := json.Marshal(gateway)
	return append(append([]byte(`{"gateway":`), g...), `,"batch":[`...)
}

const batchTail = "]}"
