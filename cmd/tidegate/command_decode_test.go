package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeMbus(t *testing.T) {
	// ACW Itron BM +m water meter telegram (libmbus test corpus).
	const acw = "68 3C 3C 68 08 08 72 78 03 49 11 77 04 0E 16 0A 00 00 00 0C 78 78 03 49 11 04 13 31 D4 00 00 42 6C " +
		"00 00 44 13 00 00 00 00 04 6D 0B 0B CD 13 02 27 00 00 09 FD 0E 02 09 FD 0F 06 0F 00 01 75 13 D3 16"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		inStdout []string
		stderr   string
	}{
		{name: "argument", args: []string{"decode", "mbus", acw}, code: exitOK,
			inStdout: []string{`"id": "11490378"`, `"manufacturer": "ACW"`, `"value": 54.321`, `"unit": "m3"`,
				`"dif": "04"`, `"vif": "13"`, `"value": "2014-03-13T11:11:00Z"`, `"value": "2000-00-00"`,
				`"function": "manufacturer specific"`, `"value": "00 01 75 13"`}},
		{name: "stdin without spaces", args: []string{"decode", "mbus", "-"}, stdin: strings.ReplaceAll(acw, " ", "") + "\n",
			code: exitOK, inStdout: []string{`"access_number": 10`}},
		{name: "ack", args: []string{"decode", "mbus", "E5"}, code: exitOK, inStdout: []string{`"frame": "ack"`}},
		{name: "short", args: []string{"decode", "mbus", "10 7B 01 7C 16"}, code: exitOK, inStdout: []string{`"c": "7B"`, `"address": 1`}},
		{name: "more records follow", args: []string{"decode", "mbus", "68 05 05 68 08 01 78 1F AB 4B 16"}, code: exitOK,
			inStdout: []string{`"function": "more records follow"`, `"value": "AB"`, `"more_records_follow": true`}},
		{name: "checksum", args: []string{"decode", "mbus", "68 05 05 68 08 01 72 AA BB 4A 16"}, code: exitUsage,
			stderr: "checksum mismatch: got 0x4A, want 0xE0\n"},
		{name: "bad hex", args: []string{"decode", "mbus", "68 0G"}, code: exitUsage, stderr: "bad hex"},
		{name: "incomplete", args: []string{"decode", "mbus", "68 3C 3C 68 08"}, code: exitUsage, stderr: "incomplete frame"},
		{name: "trailing", args: []string{"decode", "mbus", "E5 E5"}, code: exitUsage, stderr: "1 bytes after the end"},
		{name: "truncated record", args: []string{"decode", "mbus", "68 06 06 68 08 01 78 04 13 01 99 16"}, code: exitUsage, stderr: "truncated data"},
		{name: "application error", args: []string{"decode", "mbus", "68 04 04 68 08 01 70 08 81 16"}, code: exitUsage, stderr: "application error 0x08"},
		{name: "no protocol", args: []string{"decode"}, code: exitUsage, stderr: "usage: tidegate decode mbus"},
		{name: "other protocol", args: []string{"decode", "modbus", "01"}, code: exitUsage, stderr: "usage: tidegate decode mbus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("code %d, want %d; stderr %q", code, tt.code, errOut)
			}
			for _, s := range tt.inStdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %s:\n%s", s, out)
				}
			}
			if tt.stderr != "" && !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tt.stderr)
			}
			if code != exitOK && strings.Count(errOut, "\n") != 1 {
				t.Errorf("error is not one line: %q", errOut)
			}
			if code == exitOK && !json.Valid([]byte(out)) {
				t.Errorf("not JSON: %s", out)
			}
		})
	}
}

// TestDecodeMbusSharedFrames decodes every libmbus corpus frame (the
// in-repo copy, protocol/mbus/testdata/libmbus) through the CLI and checks
// the records come out in frame order with the right count.
func TestDecodeMbusSharedFrames(t *testing.T) {
	dir := "../../protocol/mbus/testdata/libmbus/frames"
	files, _ := filepath.Glob(filepath.Join(dir, "*.hex"))
	if len(files) == 0 {
		t.Fatalf("M-Bus corpus frames missing at %s", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, string(raw), "decode", "mbus", "-")
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", filepath.Base(f), code, errOut)
			continue
		}
		var got struct {
			Records []struct {
				DIF string `json:"dif"`
			} `json:"records"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		xml, _ := os.ReadFile(strings.TrimSuffix(f, ".hex") + ".norm.xml")
		if want := strings.Count(string(xml), "<DataRecord "); len(got.Records) != want {
			t.Errorf("%s: %d records, reference has %d", filepath.Base(f), len(got.Records), want)
		}
		// Frame order: each record's DIF appears in the frame after the previous one.
		hexText := strings.Join(strings.Fields(strings.ToUpper(string(raw))), " ")
		pos := 0
		for i, r := range got.Records {
			k := strings.Index(hexText[pos:], r.DIF)
			if k < 0 {
				t.Errorf("%s: record %d DIF %s not found after offset %d", filepath.Base(f), i, r.DIF, pos)
				break
			}
			pos += k + len(r.DIF)
		}
	}
}
