package daemon

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/reading"
)

// The date a restarted bus resumes backfill from: in memory as soon as a
// bus hands a daily value over, in the buffer file only once the value is
// committed, never moving back, and unaffected by other records.
func TestMemoryMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf.db")
	buf, err := buffer.Open(path, buffer.Options{Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	value := func(d int) reading.Reading {
		return reading.Reading{Meter: "a", MeterTime: day(d), Has: reading.HasForward | reading.HasMeterTime, Forward: float64(d), Source: reading.SourceMeterMemory}
	}
	m := marksOn(buf)
	if !m.held("a").IsZero() {
		t.Fatal("a mark before any value")
	}
	m.sent(value(3))
	m.sent(reading.Reading{Meter: "a", MeterTime: day(9), Has: reading.HasForward | reading.HasMeterTime}) // a poll, not from memory
	if !m.held("a").Equal(day(3)) {
		t.Fatalf("held %s after handing Dec 3 over", m.held("a"))
	}
	if got := marksOn(buf).held("a"); !got.IsZero() {
		t.Fatalf("written before the commit: %s", got)
	}
	v3, v2 := value(3), value(2)
	m.stored(reading.Record{Kind: reading.KindBilling, Reading: &v3})
	m.stored(reading.Record{Kind: reading.KindBilling, Reading: &v2}) // older: no step back
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
	buf, err = buffer.Open(path, buffer.Options{Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if got := marksOn(buf).held("a"); !got.Equal(day(3)) {
		t.Fatalf("after a restart: %s, want Dec 3", got)
	}
}

func discardLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func marksOn(buf *buffer.Buffer) *memoryMarks {
	m := newMemoryMarks(discardLog())
	m.use(buf)
	return m
}
