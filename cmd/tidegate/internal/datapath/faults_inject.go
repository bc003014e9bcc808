//go:build faultinject

package datapath

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/pipeline"
	"tidegate/reading"
	"tidegate/uplink"
)

// A build for the soak test only (go build -tags faultinject): the buffer
// the pipeline and the uplink see fails calls at the rates written in the
// file TIDEGATE_FAULTS_FILE names, e.g. "append=0.05 ack=0.2 read=0.02",
// read again every 200 ms (no file: no faults). A failed call does nothing
// before it fails, as an EIO or a full disk on a commit.
func faultable(b *buffer.Buffer, log *logrus.Logger) (pipeline.Store, uplink.Queue) {
	f := &faultyBuffer{Buffer: b, path: os.Getenv("TIDEGATE_FAULTS_FILE"), log: log}
	return f, f
}

type faultyBuffer struct {
	*buffer.Buffer
	path string
	log  *logrus.Logger

	mu    sync.Mutex
	read  time.Time
	rates map[string]float64
}

func (f *faultyBuffer) fault(op string) error {
	if f.path == "" {
		return nil
	}
	f.mu.Lock()
	if time.Since(f.read) > 200*time.Millisecond {
		f.read = time.Now()
		f.rates = map[string]float64{}
		data, _ := os.ReadFile(f.path)
		for _, kv := range strings.Fields(string(data)) {
			k, v, _ := strings.Cut(kv, "=")
			var r float64
			fmt.Sscan(v, &r)
			f.rates[k] = r
		}
	}
	rate := f.rates[op]
	f.mu.Unlock()
	if rate <= 0 || rand.Float64() >= rate {
		return nil
	}
	err := fmt.Errorf("injected fault on %s: %w", op, syscall.EIO)
	if rand.IntN(2) == 0 {
		err = fmt.Errorf("injected fault on %s: %w", op, buffer.ErrFull)
	}
	f.log.WithField("op", op).Warn("fault injected")
	return err
}

func (f *faultyBuffer) AppendWithJournal(ctx context.Context, st []buffer.State, j buffer.Journal, recs ...reading.Record) ([]uint64, error) {
	if err := f.fault("append"); err != nil {
		return nil, err
	}
	return f.Buffer.AppendWithJournal(ctx, st, j, recs...)
}

func (f *faultyBuffer) Ack(seqs ...uint64) error {
	if err := f.fault("ack"); err != nil {
		return err
	}
	return f.Buffer.Ack(seqs...)
}

func (f *faultyBuffer) Read(after uint64, max int) ([]reading.Record, error) {
	if err := f.fault("read"); err != nil {
		return nil, err
	}
	return f.Buffer.Read(after, max)
}

func (f *faultyBuffer) ReadUrgent(after uint64, max int) ([]reading.Record, error) {
	if err := f.fault("read"); err != nil {
		return nil, err
	}
	return f.Buffer.ReadUrgent(after, max)
}
