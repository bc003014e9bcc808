package daemon

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The kernel's answer, as health reports it: the same as adjtimex(2)
// says right now (this machine's clock may or may not be synchronised).
func TestSystemClockIsTheKernels(t *testing.T) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	got := systemClock{}.State()
	if err != nil {
		t.Skipf("adjtimex refused here: %v (state %+v)", err, got)
	}
	want := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	if got.Synchronised != want || got.Err != nil {
		t.Fatalf("systemClock %+v, adjtimex says synchronised=%v (state %d, status %#x)", got, want, state, tx.Status)
	}
	t.Logf("gateway clock synchronised=%v max error %.1f ms", got.Synchronised, got.MaxErrorMS)
}
