package mbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"tidegate/drivers/link"
)

// ScanProgress is reported after every probe of a scan.
type ScanProgress struct {
	Probes  int       // probes (pings or selections) sent so far
	Found   int       // meters found so far
	Pattern string    // secondary scan: the pattern just probed
	Address int       // primary scan: the address just probed
	Result  Probe     // what the probe drew
	Meter   Secondary // secondary scan: set when Result found a meter
	Elapsed time.Duration
	// Unresolved: several meters answer Pattern and no selection could
	// split them (identical addresses, or meters taking wildcards only per
	// field); they cannot be read by secondary address.
	Unresolved bool
	// Retried: Pattern drew nothing in the answer window but an answer
	// came just after it, so it was selected once more with a longer
	// window; Result is what that second selection drew.
	Retried bool
	// Rejected: a telegram read after a lone E5 named this meter, but it
	// is not listed: an exact selection of it drew no E5 (the telegram was
	// two meters' answers merged), or its id is outside Pattern. The
	// search goes on below Pattern as for a collision.
	Rejected *Secondary
}

// slowWindow is how much longer than the answer timeout a selection is
// given the second time, after its answer came late the first time.
const slowWindow = 3

// ErrScanIncomplete: a scan stopped before it covered its whole range; the
// *ScanError that wraps it names what was not covered, and what was found
// is returned beside it.
var ErrScanIncomplete = errors.New("mbus: scan incomplete")

// ScanError is a scan that stopped early: Err is why, and the rest of the
// range was not searched.
type ScanError struct {
	Err error
	// Primary scan: the addresses From..To were not probed.
	From, To int
	// Secondary scan: the selection patterns whose meters were not looked
	// for (each with its subtree), in search order; empty for a primary scan.
	Left []Pattern
}

func (e *ScanError) Error() string {
	if len(e.Left) == 0 {
		return fmt.Sprintf("mbus: primary scan stopped: addresses %d..%d not covered: %v", e.From, e.To, e.Err)
	}
	var b strings.Builder
	for i, p := range e.Left {
		if i == 4 {
			fmt.Fprintf(&b, " and %d more", len(e.Left)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	return fmt.Sprintf("mbus: secondary scan stopped at %s: not covered: %s: %v", e.Left[0], b.String(), e.Err)
}

func (e *ScanError) Unwrap() []error { return []error{ErrScanIncomplete, e.Err} }

// ScanSecondary finds every meter on the bus by secondary address: a tree
// search that selects with wildcards and, where several meters answer at
// once, fixes one more nibble and tries again. Id nibbles take 0–9; the
// manufacturer, version and medium nibbles take the full 0–F range, which is
// what separates two meters that share an id (libmbus stops at the id). A
// lone answer is read (REQ_UD2 to 253) for the meter's full address. A
// scan that stops early (cancelled, line gone) returns what it found and a
// *ScanError naming the patterns not searched: never a short list alone.
func ScanSecondary(ctx context.Context, m *Master, progress func(ScanProgress)) ([]Secondary, error) {
	s := &secondaryScan{m: m, progress: progress, start: time.Now(), seen: map[Secondary]bool{}}
	// A meter left selected by someone else would answer to 253 out of turn.
	if _, err := m.Ping(ctx, 0xFD); err != nil {
		return nil, &ScanError{Err: err, Left: []Pattern{AllWild()}}
	}
	if err := s.search(ctx, AllWild(), 0); err != nil {
		return s.found, &ScanError{Err: err, Left: s.left}
	}
	return s.found, nil
}

type secondaryScan struct {
	m        *Master
	progress func(ScanProgress)
	start    time.Time
	probes   int
	found    []Secondary
	seen     map[Secondary]bool
	// lastResult is the outcome of the latest probe.
	lastResult Probe
	// left: after an error, the patterns not searched, in search order.
	left []Pattern
}

// giveUp reports a pattern several meters answer that no selection could
// split: identical addresses, or meters with per-field wildcards.
func (s *secondaryScan) giveUp(p Pattern) {
	if s.progress != nil {
		s.progress(ScanProgress{Probes: s.probes, Found: len(s.found), Pattern: p.String(), Result: ProbeCollision, Unresolved: true, Elapsed: time.Since(s.start)})
	}
}

// selectOnce selects p; when nothing answered in the window but an answer
// came during the drain after it (a slow meter, a loaded converter), the
// silence is not taken for an empty subtree: p is selected once more with
// a longer window. probes counts both selections.
func (s *secondaryScan) selectOnce(ctx context.Context, p Pattern) (Probe, bool, error) {
	r, late, err := s.m.selectPattern(ctx, p, false, 0)
	if err != nil {
		return r, false, err
	}
	s.probes++
	if r != ProbeNone || !late {
		return r, false, nil
	}
	s.m.c.Retries.Add(1)
	r, _, err = s.m.selectPattern(ctx, p, false, slowWindow*s.m.opt.Timeout)
	if err != nil {
		return r, true, err
	}
	s.probes++
	return r, true, nil
}

func (s *secondaryScan) search(ctx context.Context, p Pattern, pos int) error {
	r, retried, err := s.selectOnce(ctx, p)
	if err != nil {
		s.left = append(s.left, p)
		return err
	}
	var meter Secondary
	var rejected *Secondary
	if r == ProbeOne {
		meter, rejected, r, err = s.identify(ctx, p)
		if err != nil {
			s.left = append(s.left, p)
			return err
		}
	}
	s.lastResult = r
	if s.progress != nil {
		s.progress(ScanProgress{Probes: s.probes, Found: len(s.found), Pattern: p.String(), Result: r, Meter: meter, Retried: retried, Rejected: rejected, Elapsed: time.Since(s.start)})
	}
	if r != ProbeCollision {
		return nil
	}
	if pos >= len(p) {
		// Fully specified and still several answer: identical addresses.
		s.giveUp(p)
		return nil
	}
	hi := byte(0xF)
	if pos < 8 {
		hi = 9
	}
	before := len(s.found)
	silent := true
	for v := byte(0); v <= hi; v++ {
		// Nibble F is also the wildcard: a selection with F here matches
		// the meters of every other branch too, so it can only single out
		// a literal F when those branches were empty. (Two meters that
		// differ only by a literal F nibble cannot be told apart by any
		// nibble-wildcard selection.)
		if v == Wild && len(s.found) > before {
			break
		}
		q := p
		q[pos] = v
		n := s.probes
		if err := s.search(ctx, q, pos+1); err != nil {
			for w := v + 1; w <= hi; w++ {
				q[pos] = w
				s.left = append(s.left, q)
			}
			return err
		}
		// Meters that take wildcards only per field (FFFF manufacturer,
		// FF version and medium) answer no half-wild byte: if none of the
		// first field nibble's values drew an answer, stop here rather
		// than walk a field they will never answer in.
		if s.probes > n+1 || s.lastResult != ProbeNone {
			silent = false
		}
		if pos >= 8 && v == 0xE && silent {
			s.giveUp(p)
			break
		}
	}
	return nil
}

// identify reads the selected meter's header. Two meters' E5s sent at once
// AND together into one E5 on RS-485, so a lone E5 can hide a collision:
// a garbled answer to the read proves one and the search descends at once;
// only silence is worth asking again. Their two answers to the read AND
// together too, and about one time in 256 the merged frame's checksum
// holds: its header then names a meter that is not there (54851302 and
// 54985560 read as 54801100). So an id is listed only once an exact
// selection of it has drawn an E5; rejected is the id a telegram named
// that did not pass, and the search then descends as for a collision.
func (s *secondaryScan) identify(ctx context.Context, p Pattern) (sec Secondary, rejected *Secondary, r Probe, err error) {
	for range 2 {
		if err := ctx.Err(); err != nil {
			return Secondary{}, nil, ProbeNone, err
		}
		t, err := s.m.request(ctx, 0xFD)
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if link.Classify(err) != link.FaultMeter {
				return Secondary{}, nil, ProbeNone, err
			}
			return Secondary{}, nil, ProbeCollision, nil
		}
		sec, ok := headerSecondary(t.CI, t.Data)
		if !ok {
			return Secondary{}, nil, ProbeCollision, nil
		}
		if !p.Matches(sec) {
			s.m.c.WrongAddress.Add(1)
			return Secondary{}, &sec, ProbeCollision, nil
		}
		if exact := sec.Pattern(); exact != p && !s.seen[sec] {
			r, _, err := s.selectOnce(ctx, exact)
			if err != nil {
				return Secondary{}, nil, ProbeNone, err
			}
			if r != ProbeOne {
				// Silence: no such meter. A collision: the exact
				// address is answered by several, or the line garbled
				// the E5; either way the search below p decides.
				s.m.c.Phantoms.Add(1)
				return Secondary{}, &sec, ProbeCollision, nil
			}
		}
		if !s.seen[sec] {
			s.seen[sec] = true
			s.found = append(s.found, sec)
		}
		return sec, nil, ProbeOne, nil
	}
	return Secondary{}, nil, ProbeCollision, nil
}
