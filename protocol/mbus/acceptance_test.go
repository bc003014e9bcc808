package mbus

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDir is the in-repo copy of libmbus's test frames (testdata/libmbus/README.md).
const corpusDir = "testdata/libmbus"

func needCorpus(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(corpusDir, "frames")); err != nil {
		t.Fatalf("M-Bus corpus missing at %s: %v", corpusDir, err)
	}
	return corpusDir
}

// parseHexFile reads "68 1F 1F 68 ..." with any whitespace.
func parseHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

type xmlRecord struct {
	ID       int    `xml:"id,attr"`
	Function string `xml:"Function"`
	Storage  *int   `xml:"StorageNumber"`
	Tariff   *int   `xml:"Tariff"`
	Device   *int   `xml:"Device"`
	Unit     string `xml:"Unit"`
	Quantity string `xml:"Quantity"`
	Value    string `xml:"Value"`
}

type xmlData struct {
	Slave struct {
		ID           string `xml:"Id"`
		Manufacturer string `xml:"Manufacturer"`
		Version      string `xml:"Version"`
		AccessNumber string `xml:"AccessNumber"`
	} `xml:"SlaveInformation"`
	Records []xmlRecord `xml:"DataRecord"`
}

func latin1Reader(charset string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// The files say ISO-8859-1 but some are UTF-8 already.
	if utf8.Valid(b) {
		return bytes.NewReader(b), nil
	}
	var out []byte
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return bytes.NewReader(out), nil
}

func readExpected(path string) (xmlData, error) {
	f, err := os.Open(path)
	if err != nil {
		return xmlData{}, err
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	dec.CharsetReader = latin1Reader
	var d xmlData
	err = dec.Decode(&d)
	return d, err
}

// knownLibmbusErrors lists records where the reference decoding is, we
// believe, wrong; each is skipped with the reason. Key: "file#id".
//
// Not listed, so counted as a mismatch: manual_frame2#1, the second counter
// of a fixed data structure (CI 73) with unit code 3E. We read 3E as "unit of
// counter 1, historic value" (stored value, 135 l); libmbus names the unit
// "reserved but historic". We are not sure enough of the fixed structure's
// unit table to call libmbus wrong.
var knownLibmbusErrors = map[string]string{
	"ELS_Elster-F96-Plus#4": "BCD field BD EB DD DD has digits B, D, E: EN 13757-3 annex A type A allows 0-9 (F only as the sign " +
		"in the top digit); in a 'value during error state' record they are error markers. libmbus prints 13131113, " +
		"which no reading of those digits gives; we report the value invalid with its raw bytes",
	"ELS_Elster-F96-Plus#5": "BCD field BD EB DD: non-decimal digits, as ELS_Elster-F96-Plus#4",
	"REL-Relay-Padpuls2#1": "date-time type F with the IV bit (bit 7 of the minute byte, EN 13757-3 annex A type F) set: " +
		"the time is marked invalid. libmbus prints 1900-01-00T00:00:00Z, which is not in the frame; we give the " +
		"fields as sent (2015-07-09T21:33:00Z) and flag the value invalid",
	"SEN_Pollustat#12": "VIF BE 50: VIFE 50h is the combinable VIFE E101 ufnn 'duration of limit exceed' (EN 13757-3 " +
		"table of combinable VIFEs), here in seconds; libmbus ignores it and reports a volume flow of 11582321 m3/h",
	"SEN_Pollustat#13": "VIF BE 58: VIFE 58h, duration of upper limit exceed in seconds, as SEN_Pollustat#12",
	"sen_pollutherm#2": "VIF 7Bh without the extension bit: EN 13757-3 primary VIF table gives 7Bh only as the escape to " +
		"extension table FB, whose code must follow in a VIFE; libmbus outputs an empty record, so there is nothing to " +
		"compare. We keep the data (302) with a quantity that names the fault",
}

// normUnit maps libmbus's unit spelling onto ours and gives the factor its
// value must be multiplied by.
func normUnit(u string) (string, float64) {
	switch u {
	case "-", "":
		return "", 1
	case "m^3":
		return "m3", 1
	case "m^3/h":
		return "m3/h", 1
	case "°C":
		return "degC", 1
	case "Units for H.C.A.":
		return "HCA", 1
	case "l":
		return "m3", 0.001
	case "Reserved":
		// libmbus names the unit of a reserved code "Reserved"; a reserved
		// code has no unit, so we give none.
		return "", 1
	}
	return u, 1
}

func compareRecord(x xmlRecord, r Record) error {
	if x.Function == "Manufacturer specific" || x.Function == "More records follow" {
		want := strings.ToUpper(strings.TrimSpace(x.Value))
		got := hexSpaced(r.Value.Bytes)
		if got != want && hexSpaced(reversed(r.Value.Bytes)) != want {
			return fmt.Errorf("manufacturer data %q, want %q (or reversed)", got, want)
		}
		return nil
	}
	if x.Storage != nil && uint64(*x.Storage) != r.Storage {
		return fmt.Errorf("storage %d, want %d", r.Storage, *x.Storage)
	}
	unit, factor := normUnit(x.Unit)
	if r.PlainText {
		unit = x.Quantity
	}
	if unit != r.Unit {
		return fmt.Errorf("unit %q, want %q (libmbus %q)", r.Unit, unit, x.Unit)
	}
	switch r.Value.Kind {
	case ValueNumber:
		want, err := strconv.ParseFloat(strings.TrimSpace(x.Value), 64)
		if err != nil {
			return fmt.Errorf("value %v, libmbus %q", r.Value.Number, x.Value)
		}
		want *= factor
		if math.Abs(r.Value.Number-want) > 5e-7+1e-6*math.Abs(want) {
			return fmt.Errorf("value %v, want %v", r.Value.Number, want)
		}
	case ValueDate, ValueDateTime, ValueTime, ValueText:
		if r.Value.Text != x.Value {
			return fmt.Errorf("value %q, want %q", r.Value.Text, x.Value)
		}
	case ValueBytes:
		if got := hexSpaced(r.Value.Bytes); got != strings.TrimSpace(x.Value) {
			return fmt.Errorf("value %q, want %q", got, x.Value)
		}
	case ValueNone:
		if strings.TrimSpace(x.Value) != "" {
			return fmt.Errorf("no value, want %q", x.Value)
		}
	}
	return nil
}

func hexSpaced(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(s[i : i+2])
	}
	return sb.String()
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func TestAcceptanceLibmbus(t *testing.T) {
	dir := needCorpus(t)
	files, err := filepath.Glob(filepath.Join(dir, "frames", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no frames: %v", err)
	}
	var total, match, skipped int
	for _, hf := range files {
		name := strings.TrimSuffix(filepath.Base(hf), ".hex")
		raw, err := os.ReadFile(hf)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseHex(string(raw))
		if err != nil {
			t.Errorf("%s: bad hex: %v", name, err)
			continue
		}
		want, err := readExpected(strings.TrimSuffix(hf, ".hex") + ".norm.xml")
		if err != nil {
			t.Errorf("%s: expected: %v", name, err)
			continue
		}
		f, n, err := Decode(b)
		if err != nil || n != len(b) {
			t.Errorf("%s: frame: n=%d of %d, %v", name, n, len(b), err)
			total += len(want.Records)
			continue
		}
		tg, err := DecodeTelegram(f)
		if err != nil {
			t.Errorf("%s: telegram: %v", name, err)
		}
		if want.Slave.ID != "" && strings.TrimLeft(tg.Header.ID, "0") != strings.TrimLeft(want.Slave.ID, "0") {
			t.Errorf("%s: id %s, want %s", name, tg.Header.ID, want.Slave.ID)
		}
		if want.Slave.Manufacturer != "" && tg.Header.Manufacturer != want.Slave.Manufacturer {
			t.Errorf("%s: manufacturer %q, want %q", name, tg.Header.Manufacturer, want.Slave.Manufacturer)
		}
		if len(tg.Records) != len(want.Records) {
			t.Errorf("%s: %d records, want %d", name, len(tg.Records), len(want.Records))
		}
		for i, x := range want.Records {
			total++
			key := fmt.Sprintf("%s#%d", name, x.ID)
			if why, ok := knownLibmbusErrors[key]; ok {
				skipped++
				t.Logf("skip %s: %s", key, why)
				continue
			}
			if i >= len(tg.Records) {
				t.Logf("MISMATCH %s: record missing", key)
				continue
			}
			if err := compareRecord(x, tg.Records[i]); err != nil {
				t.Logf("MISMATCH %s: dif % X vif % X: %v", key, tg.Records[i].DIB, tg.Records[i].VIB, err)
				continue
			}
			match++
		}
	}
	rate := 100 * float64(match) / float64(total-skipped)
	t.Logf("mbus acceptance: %d/%d records match (%.1f%%), %d skipped as libmbus errors", match, total-skipped, rate, skipped)
	if rate < 98 {
		t.Errorf("match rate %.1f%% below 98%%", rate)
	}
}

func TestErrorFrames(t *testing.T) {
	dir := needCorpus(t)
	files, _ := filepath.Glob(filepath.Join(dir, "error-frames", "*.hex"))
	if len(files) == 0 {
		t.Fatal("no error frames")
	}
	for _, hf := range files {
		name := filepath.Base(hf)
		raw, _ := os.ReadFile(hf)
		b, err := parseHex(string(raw))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		f, _, err := Decode(b)
		if err == nil {
			_, err = DecodeTelegram(f)
		}
		if err == nil {
			t.Errorf("%s: decoded without error", name)
			continue
		}
		// Every error must be one of ours, so callers can classify it.
		known := []error{ErrChecksum, ErrLength, ErrStartByte, ErrStopByte, ErrIncomplete, ErrTruncated,
			ErrTooManyExtensions, ErrBadValue, ErrCI, ErrApplication}
		ok := false
		for _, k := range known {
			ok = ok || errors.Is(err, k)
		}
		if !ok {
			t.Errorf("%s: unclassified error %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
