package daemon

import (
	"io"
	"os"
	"time"

	"github.com/sirupsen/logrus"
)

// NewLogger builds the daemon's logger: text on a terminal for a technician
// watching, JSON otherwise (systemd's journal, log shippers).
func NewLogger(w io.Writer, level, format string) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	if format == "auto" || format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		l.SetFormatter(durationsAsText{&logrus.JSONFormatter{}})
	}
	applyLogLevel(l, level)
	return l
}

// durationsAsText writes time.Duration fields as "500ms" rather than the
// nanoseconds encoding/json would make of them ("retry_in":500000000).
type durationsAsText struct{ logrus.Formatter }

func (f durationsAsText) Format(e *logrus.Entry) ([]byte, error) {
	var data logrus.Fields
	for k, v := range e.Data {
		d, ok := v.(time.Duration)
		if !ok {
			continue
		}
		if data == nil { // copy on first use: the entry's map may be shared
			data = make(logrus.Fields, len(e.Data))
			for k2, v2 := range e.Data {
				data[k2] = v2
			}
		}
		data[k] = d.String()
	}
	if data != nil {
		c := *e
		c.Data = data
		e = &c
	}
	return f.Formatter.Format(e)
}

func applyLogLevel(l *logrus.Logger, level string) {
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		lv = logrus.InfoLevel
	}
	l.SetLevel(lv)
}

// isTerminal reports whether w is a character device (a TTY), without a
// terminal library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
