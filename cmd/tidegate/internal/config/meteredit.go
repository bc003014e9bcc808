package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrMeterEdit is wrapped by every refusal of UpsertMeters and RemoveMeters
// that is not a config problem (the edited file's problems are *Problems).
var ErrMeterEdit = errors.New("cannot edit the meter list")

// UpsertMeters edits a config file's text: each meter (a JSON object with
// the config's own keys, as meters[] writes them) replaces the meter with
// its id, or is added at the end of the meters list. A replaced meter's
// line (or lines) become one flow item at the same indentation and keep
// its trailing comment; every other byte, comments and blank lines
// included, stays. The result is not validated here: the caller parses it
// with exactly the checks of config validate.
func UpsertMeters(src []byte, meters []json.RawMessage) ([]byte, error) {
	doc, seq, err := meterList(src)
	if err != nil {
		return nil, err
	}
	ed := NewTextEdit(src)
	ed.split()
	var add []string
	seen := map[string]bool{}
	for i, raw := range meters {
		id, flow, err := flowMeter(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: meters[%d]: %v", ErrMeterEdit, i, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: meter %q is given twice", ErrMeterEdit, id)
		}
		seen[id] = true
		j := itemIndex(seq, id)
		if j < 0 {
			add = append(add, "- "+flow)
			continue
		}
		from, to := itemLines(ed, doc, seq, j)
		first := ed.lines[from]
		lead := first[:len(first)-len(strings.TrimLeft(first, " \t"))]
		line := lead + "- " + flow
		if from == to {
			if c := trailingComment(first); c != "" {
				line += "  " + c
			}
		}
		ed.repl[from] = line + "\n"
		for k := from + 1; k <= to; k++ {
			ed.drop[k] = true
		}
	}
	if len(add) > 0 {
		if err := ed.AppendItems(doc, "meters", add); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMeterEdit, err)
		}
	}
	return ed.Bytes(), nil
}

// RemoveMeters edits a config file's text: the meters with these ids go,
// with their lines; the rest of the file stays byte for byte. An id the
// file does not have is an error (a station's archive out of step with
// the box should hear about it).
func RemoveMeters(src []byte, ids []string) ([]byte, error) {
	doc, seq, err := meterList(src)
	if err != nil {
		return nil, err
	}
	ed := NewTextEdit(src)
	ed.split()
	for _, id := range ids {
		j := itemIndex(seq, id)
		if j < 0 {
			return nil, fmt.Errorf("%w: no meter %q in the config", ErrMeterEdit, id)
		}
		from, to := itemLines(ed, doc, seq, j)
		for k := from; k <= to; k++ {
			ed.drop[k] = true
		}
	}
	return ed.Bytes(), nil
}

func meterList(src []byte) (doc, seq *yaml.Node, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%w: the running config is not a YAML mapping", ErrMeterEdit)
	}
	doc = root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "meters" {
			v := doc.Content[i+1]
			if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle != 0 && len(v.Content) > 0 {
				return nil, nil, fmt.Errorf("%w: meters is a flow list [...]; write it as a block list", ErrMeterEdit)
			}
			if v.Kind == yaml.SequenceNode {
				return doc, v, nil
			}
		}
	}
	return doc, &yaml.Node{Kind: yaml.SequenceNode}, nil
}

func itemIndex(seq *yaml.Node, id string) int {
	for j, it := range seq.Content {
		if it.Kind != yaml.MappingNode {
			continue
		}
		for k := 0; k+1 < len(it.Content); k += 2 {
			if it.Content[k].Value == "id" && it.Content[k+1].Value == id {
				return j
			}
		}
	}
	return -1
}

// itemLines is the first and last original line (0-based) of list item j:
// from its "- " line to the line before the next item, less the blank
// lines and comments that lead into what follows (they stay with it).
func itemLines(ed *TextEdit, doc, seq *yaml.Node, j int) (from, to int) {
	from = seq.Content[j].Line - 1
	end := len(ed.lines) // exclusive
	if j+1 < len(seq.Content) {
		end = seq.Content[j+1].Line - 1
	} else {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i+1] == seq && i+2 < len(doc.Content) {
				end = doc.Content[i+2].Line - 1
			}
		}
	}
	for end-1 > from {
		if tr := strings.TrimSpace(ed.lines[end-1]); tr == "" || strings.HasPrefix(tr, "#") {
			end--
			continue
		}
		break
	}
	return from, end - 1
}

// flowMeter renders one meter as a YAML flow mapping on one line, keys in
// the order the command gave them.
func flowMeter(raw json.RawMessage) (id, flow string, err error) {
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil || len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return "", "", errors.New("not an object with the config's meter keys")
	}
	m := n.Content[0]
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == "id" && m.Content[k+1].Kind == yaml.ScalarNode {
			id = m.Content[k+1].Value
		}
	}
	if id == "" {
		return "", "", errors.New("no id")
	}
	var style func(*yaml.Node)
	style = func(n *yaml.Node) {
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		if n.Kind == yaml.ScalarNode {
			n.Style = 0
		} else {
			n.Style = yaml.FlowStyle
		}
		for _, c := range n.Content {
			style(c)
		}
	}
	style(m)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(m); err != nil {
		return "", "", err
	}
	enc.Close()
	flow = strings.TrimSpace(b.String())
	if strings.Contains(flow, "\n") {
		return "", "", errors.New("does not fit on one line")
	}
	return id, flow, nil
}

// trailingComment is a line's comment after its content, "" if none.
func trailingComment(l string) string {
	l = strings.TrimRight(l, "\r\n")
	inQ := byte(0)
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case inQ != 0:
			if c == inQ {
				inQ = 0
			}
		case c == '"' || c == '\'':
			inQ = c
		case c == '#' && i > 0 && (l[i-1] == ' ' || l[i-1] == '\t'):
			return l[i:]
		}
	}
	return ""
}
