package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NewTextEdit starts an edit of a YAML file's text (scan --append-config,
// the downlink's meters_upsert and meters_remove): comments, alignment and
// blank lines outside the edited lines stay as they were.
func NewTextEdit(data []byte) *TextEdit { return &TextEdit{data: data} }

// TextEdit inserts and replaces lines into a YAML file's text at places found from its
// parsed tree, leaving every other byte alone. Insertions are kept apart
// from the original lines so positions from the tree stay valid.
type TextEdit struct {
	data  []byte
	lines []string         // the original lines, each with its newline
	after map[int][]string // lines to insert after original line i (0-based; -1 = before the first)
	repl  map[int]string   // original lines replaced
	drop  map[int]bool     // original lines removed
	tail  []string         // lines appended at the end
}

func (t *TextEdit) split() {
	if t.lines != nil {
		return
	}
	t.after, t.repl, t.drop = map[int][]string{}, map[int]string{}, map[int]bool{}
	s := string(t.data)
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			t.lines = append(t.lines, s)
			break
		}
		t.lines = append(t.lines, s[:i+1])
		s = s[i+1:]
	}
}

// AppendItems adds list items (each starting "- " or "# - ") to the
// top-level block list key: after its last item, before whatever comes
// next (blank lines and column-0 comments before the next key stay with
// that key). `key: []` becomes a block list; a missing key is added at the
// end of the file.
func (t *TextEdit) AppendItems(doc *yaml.Node, key string, items []string) error {
	t.split()
	idx := -1
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == key {
			idx = i
		}
	}
	if idx < 0 {
		t.tail = append(t.tail, key+":\n")
		for _, it := range items {
			t.tail = append(t.tail, "  "+it+"\n")
		}
		return nil
	}
	k, v := doc.Content[idx], doc.Content[idx+1]
	indent := "  "
	switch {
	case v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle != 0:
		if len(v.Content) != 0 {
			return fmt.Errorf("%s is a flow list [...]; write it as a block list (one '- ' item a line) to append to it", key)
		}
		// `key: []` on one line: drop the brackets, keep any comment.
		ln := t.lines[v.Line-1]
		c := v.Column - 1
		if c+2 > len(ln) || ln[c:c+2] != "[]" {
			return fmt.Errorf("%s: cannot find its [] on line %d", key, v.Line)
		}
		t.repl[v.Line-1] = strings.TrimRight(ln[:c], " ") + ln[c+2:]
	case v.Kind == yaml.SequenceNode:
		indent = strings.Repeat(" ", v.Column-1)
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
	default:
		return fmt.Errorf("%s is not a list", key)
	}
	// The list ends where the next top-level key (or the file) begins,
	// less the blank lines and column-0 comments that lead into it.
	end := len(t.lines)
	if idx+2 < len(doc.Content) {
		end = doc.Content[idx+2].Line - 1
		if hc := doc.Content[idx+2].HeadComment; hc != "" {
			end -= strings.Count(hc, "\n") + 1
		}
	}
	for end-1 > k.Line-1 {
		l := t.lines[end-1]
		if tr := strings.TrimSpace(l); tr == "" || (strings.HasPrefix(l, "#")) {
			end--
			continue
		}
		break
	}
	at := end - 1 // insert after this original line
	if at >= 0 && !strings.HasSuffix(t.lines[at], "\n") {
		t.lines[at] += "\n"
	}
	for _, it := range items {
		t.after[at] = append(t.after[at], indent+it+"\n")
	}
	return nil
}

// Bytes is the edited text.
func (t *TextEdit) Bytes() []byte {
	t.split()
	var b strings.Builder
	b.WriteString(strings.Join(t.after[-1], ""))
	for i, l := range t.lines {
		if r, ok := t.repl[i]; ok {
			l = r
		}
		if !t.drop[i] {
			b.WriteString(l)
		}
		b.WriteString(strings.Join(t.after[i], ""))
	}
	if len(t.tail) > 0 && b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	b.WriteString(strings.Join(t.tail, ""))
	return []byte(b.String())
}
