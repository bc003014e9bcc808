package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// JSON logs carry durations as Go duration strings, not nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, "info", "json")
	l.WithField("retry_in", 500*time.Millisecond).WithField("n", 3).Warn("bus cannot be opened")
	out := buf.String()
	if !strings.Contains(out, `"retry_in":"500ms"`) || !strings.Contains(out, `"n":3`) {
		t.Errorf("JSON log: %s", out)
	}
}
