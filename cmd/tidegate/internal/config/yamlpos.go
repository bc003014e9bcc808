package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem places a YAML syntax error where the mistake is. The YAML
// library often reports where the enclosing block began (a bad indent on
// line 20 comes back as the list's line 11; a tab as the line above it), so
// the real line is found as the shortest prefix of the file that fails with
// the same complaint, and the column and wording from what is on that line.
func syntaxProblem(file string, data []byte, err error) Problem {
	p := Problem{File: file, What: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return p
	}
	reported, _ := strconv.Atoi(m[1])
	msg := m[2]
	p.Line, p.Column, p.What = reported, 1, "not valid YAML: "+msg
	lines := strings.SplitAfter(string(data), "\n")
	line := reported
	if !strings.Contains(msg, "end of stream") {
		// An unterminated quote fails every prefix alike: its own line, as
		// the library reports it, is right.
		line = firstFailingLine(lines, msg, reported)
	}
	if line < 1 || line > len(lines) {
		return p
	}
	p.Line = line
	text := strings.TrimRight(lines[line-1], "\r\n")
	indent := len(text) - len(strings.TrimLeft(text, " "))
	p.Column = indent + 1
	switch {
	case strings.ContainsRune(leadingSpace(text), '\t'):
		p.Column = strings.IndexByte(text, '\t') + 1
		p.What = "not valid YAML: a tab in the indentation; indent with spaces only"
	case strings.Contains(msg, "end of stream") && strings.ContainsAny(text, `"'`):
		p.Column = strings.IndexAny(text, `"'`) + 1
		p.What = "not valid YAML: a quote opened here is never closed"
	case line > 1 && missingColon(lines[line-2], text):
		p.Line--
		prev := strings.TrimRight(lines[line-2], "\r\n")
		p.Column = len(prev) - len(strings.TrimLeft(prev, " ")) + 1
		p.What = fmt.Sprintf("not valid YAML: %q needs a ':' after the key", strings.TrimSpace(prev))
	case strings.Contains(msg, "could not find expected ':'"):
		p.What = fmt.Sprintf("not valid YAML: %q needs a ':' after the key", strings.TrimSpace(text))
	default:
		if lv := openIndents(lines[:line-1], indent); lv != "" {
			p.What = fmt.Sprintf("not valid YAML: this line is indented %d spaces, %s (%s)", indent, lv, msg)
		}
	}
	return p
}

// firstFailingLine is the first line whose prefix of the file fails to
// parse with the complaint msg; reported when none does.
func firstFailingLine(lines []string, msg string, reported int) int {
	var prefix bytes.Buffer
	for i, l := range lines {
		prefix.WriteString(l)
		var n yaml.Node
		err := yaml.Unmarshal(prefix.Bytes(), &n)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && m[2] == msg {
			return i + 1
		}
	}
	return reported
}

func leadingSpace(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// missingColon: prev is a bare word at the same indent as a key: value line,
// which YAML reads as the start of a multi-line scalar.
func missingColon(prev, cur string) bool {
	prev, cur = strings.TrimRight(prev, "\r\n"), strings.TrimRight(cur, "\r\n")
	pt, ct := strings.TrimLeft(prev, " "), strings.TrimLeft(cur, " ")
	if len(prev)-len(pt) != len(cur)-len(ct) || pt == "" || strings.HasPrefix(pt, "#") || strings.HasPrefix(pt, "- ") {
		return false
	}
	isKey := func(s string) bool { return strings.Contains(s, ": ") || strings.HasSuffix(s, ":") }
	return !isKey(pt) && isKey(ct)
}

// openIndents lists the indents of the blocks still open above a line, if
// indent is none of them; "" otherwise.
func openIndents(above []string, indent int) string {
	var stack []int
	for _, l := range above {
		t := strings.TrimRight(l, "\r\n")
		s := strings.TrimLeft(t, " ")
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		in := len(t) - len(s)
		for len(stack) > 0 && stack[len(stack)-1] > in {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 || stack[len(stack)-1] < in {
			stack = append(stack, in)
		}
		if strings.HasPrefix(s, "- ") { // a list item's keys sit after the dash
			in2 := in + 2 + len(s[2:]) - len(strings.TrimLeft(s[2:], " "))
			stack = append(stack, in2)
		}
	}
	var names []string
	for _, in := range stack {
		if in == indent {
			return ""
		}
		names = append(names, strconv.Itoa(in))
	}
	if len(names) == 0 { // nothing above but comments or blank lines
		return ""
	}
	if len(names) > 1 {
		return "the blocks above are at " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	}
	return "the block above is at " + names[0]
}
