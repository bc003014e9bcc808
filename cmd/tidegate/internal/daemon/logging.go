package daemon

import (
	"io"
	"os"

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
		l.SetFormatter(&logrus.JSONFormatter{})
	}
	applyLogLevel(l, level)
	return l
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
