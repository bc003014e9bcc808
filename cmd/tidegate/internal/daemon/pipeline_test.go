package daemon

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
)

// A due-date value (Storage 1) goes to the buffer as it came, beside the
// current billing read; the filter sees only the current one. Fed to the
// filter, the older frozen total would read as the totals stepping back.
func TestPipelineDueDateBypassesFilter(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, filepath.Join(dir, "c.yaml"), dir, "  - {id: m2, bus: b, address: 2}")
	cfg, err := config.Load(filepath.Join(dir, "c.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MQTT.Broker = "" // no uplink: the records stay in the buffer
	log := logrus.New()
	log.SetOutput(io.Discard)
	p, err := openPipeline(cfg, log, newHub(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 0, 5, 0, 0, time.UTC)
	cur := reading.Reading{Meter: "m2", Received: t0, Has: reading.HasForward, Forward: 12.5}
	due := reading.Reading{Meter: "m2", Received: t0, Has: reading.HasForward | reading.HasMeterTime, Forward: 11.0,
		MeterTime: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Storage: 1}
	later := cur
	later.Received, later.Forward = t0.Add(time.Hour), 12.6
	p.handle(reading.Record{Kind: reading.KindBilling, Reading: &cur})
	p.handle(reading.Record{Kind: reading.KindBilling, Reading: &due})
	p.handle(reading.Record{Kind: reading.KindReading, Reading: &later})
	if err := p.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, filepath.Join(dir, "buf.db"))
	var dues, faults int
	for _, r := range recs {
		if r.Reading == nil {
			continue
		}
		if r.Reading.Storage == 1 {
			dues++
			if r.Kind != reading.KindBilling || r.Reading.Filter != nil || r.Reading.Forward != 11.0 {
				t.Errorf("due-date value stored as %v %+v", r.Kind, r.Reading)
			}
		}
		if f := r.Reading.Filter; f != nil && f.Flags&reading.FlagMeterFault != 0 {
			faults++
		}
	}
	if dues != 1 || faults != 0 {
		t.Fatalf("%d due-date values, %d meter_fault intervals in %d records; want 1 and 0", dues, faults, len(recs))
	}
}

func readAll(t *testing.T, path string) []reading.Record {
	t.Helper()
	b, err := buffer.Open(path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	recs, err := b.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
