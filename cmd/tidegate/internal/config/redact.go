package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is what a secret is shown as.
const Redacted = "***"

// RedactURL hides the password of a URL's user info: tcp://gwuser:S3cret@host
// becomes tcp://gwuser:***@host. It works on text that does not parse as a
// URL too (a broker setting validation refuses is still printed in its
// error), and leaves anything without user info as it is. This is the one
// redaction of a URL: status, logs and problems all print through it.
func RedactURL(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?# \t\n\"'")
		if end < 0 {
			end = len(rest)
		}
		host := rest[:end]
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			if colon := strings.IndexByte(host[:at], ':'); colon >= 0 {
				host = host[:colon+1] + Redacted + host[at:]
			}
		}
		b.WriteString(host)
		s = rest[end:]
	}
}

// secretKey says whether a mapping key holds a secret by its name: every
// password, secret, token or private key the file may hold. File names
// (password_file, key_file) are paths, not secrets.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	if strings.HasSuffix(k, "_file") || strings.HasSuffix(k, "_dir") {
		return false
	}
	for _, w := range []string{"password", "passwd", "secret", "token", "private_key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// redactNode replaces every secret scalar below n in place and calls hit
// with each node it changed and its new value.
func redactNode(n *yaml.Node, hit func(n *yaml.Node, v string)) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c, hit)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && secretKey(k.Value) && v.Tag != "!!null" && v.Value != "" && v.Value != Redacted {
				hit(v, Redacted)
				continue
			}
			redactNode(v, hit)
		}
	case yaml.ScalarNode:
		if r := RedactURL(n.Value); r != n.Value {
			hit(n, r)
		}
	}
}

// RedactText returns a config file's text with every secret replaced by ***
// (secret keys' values, passwords inside URLs) and every other byte as it
// was, comments included: what config_get sends. Text that is not YAML is
// returned with only its URLs redacted line by line.
func RedactText(data []byte) []byte {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		lines := strings.SplitAfter(string(data), "\n")
		for i, l := range lines {
			for _, f := range strings.Fields(l) {
				if r := RedactURL(f); r != f {
					l = strings.Replace(l, f, r, 1)
				}
			}
			lines[i] = l
		}
		return []byte(strings.Join(lines, ""))
	}
	var cuts []scalarCut
	redactNode(&root, func(n *yaml.Node, v string) { cuts = append(cuts, scalarCut{n, v}) })
	return replaceScalars(data, cuts)
}

// scalarCut replaces one scalar's text with a quoted value.
type scalarCut struct {
	n *yaml.Node
	v string
}

// replaceScalars replaces scalars in a YAML file's text at their positions
// (each on its first line), every other byte as it was. cuts are in
// document order.
func replaceScalars(data []byte, cuts []scalarCut) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	// Later cuts first, so earlier columns on a line stay valid.
	for i := len(cuts) - 1; i >= 0; i-- {
		n := cuts[i].n
		if n.Line < 1 || n.Line > len(lines) {
			continue
		}
		l := lines[n.Line-1]
		from := n.Column - 1
		if from < 0 || from > len(l) {
			continue
		}
		q, _ := json.Marshal(cuts[i].v) // a JSON string is a YAML double-quoted scalar
		lines[n.Line-1] = l[:from] + string(q) + l[scalarEnd(l, from, n.Style):]
	}
	return []byte(strings.Join(lines, ""))
}

// walkScalars calls fn with every scalar value below n, its path
// (mqtt.password, meters[3].id) and the key it is the value of.
func walkScalars(n *yaml.Node, path, key string, fn func(path, key string, n *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkScalars(c, path, key, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkScalars(c, fmt.Sprintf("%s[%d]", path, i), key, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkScalars(n.Content[i+1], p, k, fn)
		}
	case yaml.ScalarNode:
		fn(path, key, n)
	}
}

// Unredact puts the running config's secrets back into a config edited
// from config_get's text: a secret the sender left as *** (a password, the
// password in a broker URL otherwise unchanged) is the running one at the
// same place. Without it, the natural round trip (config_get, edit, push)
// would write *** as the broker password and cut the box off.
func Unredact(edited, running []byte) []byte {
	var er, rr yaml.Node
	if yaml.Unmarshal(edited, &er) != nil || yaml.Unmarshal(running, &rr) != nil {
		return edited
	}
	secrets := map[string]string{} // path → the running value, where redaction hides something
	redactedAs := map[string]string{}
	walkScalars(&rr, "", "", func(path, key string, n *yaml.Node) {
		switch {
		case secretKey(key) && n.Value != "" && n.Value != Redacted:
			secrets[path], redactedAs[path] = n.Value, Redacted
		case RedactURL(n.Value) != n.Value:
			secrets[path], redactedAs[path] = n.Value, RedactURL(n.Value)
		}
	})
	var cuts []scalarCut
	walkScalars(&er, "", "", func(path, key string, n *yaml.Node) {
		if v, ok := secrets[path]; ok && n.Value == redactedAs[path] {
			cuts = append(cuts, scalarCut{n, v})
		}
	})
	if len(cuts) == 0 {
		return edited
	}
	return replaceScalars(edited, cuts)
}

// scalarEnd is where a scalar that starts at from on line l ends: its
// closing quote, or for a plain scalar the start of a comment or flow
// punctuation, or the line's end.
func scalarEnd(l string, from int, style yaml.Style) int {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		for i := from + 1; i < len(l); i++ {
			if l[i] == '\\' {
				i++
				continue
			}
			if l[i] == '"' {
				return i + 1
			}
		}
	case style&yaml.SingleQuotedStyle != 0:
		for i := from + 1; i < len(l); i++ {
			if l[i] == '\'' {
				if i+1 < len(l) && l[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
	default:
		end := len(strings.TrimRight(l, "\r\n"))
		if j := strings.Index(l[from:], " #"); j >= 0 && from+j < end {
			end = from + j
		}
		for _, p := range []string{", ", "}", "]"} {
			if j := strings.Index(l[from:], p); j >= 0 && from+j < end {
				end = from + j
			}
		}
		return len(strings.TrimRight(l[:end], " \t"))
	}
	return len(strings.TrimRight(l, "\r\n"))
}

// hashOf is a config's config_hash: the digest of its text with every
// secret replaced, so the published hash tells nothing of a password (a
// plain digest of a file whose only unknown is a short password can be
// searched) and two boxes differing only in their password share it.
func hashOf(data []byte) string {
	var root yaml.Node
	text := data
	if err := yaml.Unmarshal(data, &root); err == nil {
		redactNode(&root, func(n *yaml.Node, v string) { n.Value = v })
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		if enc.Encode(&root) == nil && enc.Close() == nil {
			text = b.Bytes()
		}
	}
	sum := sha256.Sum256(text)
	return hex.EncodeToString(sum[:8])
}

// HashOf is the config_hash of a config file's text (see hashOf).
func HashOf(data []byte) string { return hashOf(data) }
