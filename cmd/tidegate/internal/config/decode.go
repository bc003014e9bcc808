package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree into a Go value by reflection, so every
// problem (unknown key, wrong type) is reported with the node's position and
// the dotted path a technician can find in the file, and decoding goes on
// after a problem to find the next one.
type decoder struct {
	problems *Problems
	// nodes remembers where each path was written, so semantic checks run
	// after decoding can point at the right line and column.
	nodes map[string]*yaml.Node
	// aliases counts alias expansions: a config never needs many, and a
	// file of nested aliases could otherwise expand exponentially.
	aliases int
	depth   int
}

const (
	maxAliases = 1000
	maxDepth   = 32
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		d.aliases++
		if n.Alias == nil || d.aliases > maxAliases {
			d.problems.at(n, path, "too many or unresolved aliases; write the values out")
			return
		}
		n = n.Alias
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		d.problems.at(n, path, "nested too deeply")
		return
	}
	d.nodes[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			d.problems.at(n, path, "expected a duration such as 30s, 15m or 1h")
			return
		}
		if n.Value == "off" {
			// A wait that can be switched off (mqtt.reconnect_jitter,
			// connect_gap); the validator refuses it anywhere else.
			v.SetInt(-1)
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.problems.at(n, path, "%q is not a duration; expected e.g. 30s, 15m or 1h", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	case t == sizeType:
		if n.Kind != yaml.ScalarNode {
			d.problems.at(n, path, "expected a size such as 64MiB or 1000000")
			return
		}
		s, err := ParseSize(n.Value)
		if err != nil {
			d.problems.at(n, path, "%v", err)
			return
		}
		v.SetInt(int64(s))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.problems.at(n, path, "expected a mapping of keys")
			return
		}
		fields := map[string][]int{}
		var known []string
		for i := 0; i < t.NumField(); i++ {
			tag := t.Field(i).Tag.Get("yaml")
			if tag == ",inline" && t.Field(i).Type.Kind() == reflect.Struct {
				// An inline struct's keys are the outer mapping's.
				it := t.Field(i).Type
				for j := 0; j < it.NumField(); j++ {
					if tg := it.Field(j).Tag.Get("yaml"); tg != "" && tg != "-" {
						fields[tg] = []int{i, j}
						known = append(known, tg)
					}
				}
				continue
			}
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = []int{i}
			known = append(known, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				d.problems.at(k, sub, "unknown key; expected one of %s", strings.Join(known, ", "))
				continue
			}
			if seen[k.Value] {
				d.problems.at(k, sub, "duplicate key")
				continue
			}
			seen[k.Value] = true
			d.decode(val, v.FieldByIndex(idx), sub)
		}
	case reflect.Map:
		// Free-form keys (mqtt.command_keys: kid → file), string keys only.
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.problems.at(n, path, "expected a mapping of keys")
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.problems.at(k, sub, "duplicate key")
				continue
			}
			e := reflect.New(t.Elem()).Elem()
			d.decode(val, e, sub)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problems.at(n, path, "expected a list")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.problems.at(n, path, "expected a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.problems.at(n, path, "%q is not a boolean; expected true or false", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil && allDigits(n.Value) {
			// Leading zeros are not octal here: a CJ/T 188 address is 14
			// decimal digits as on the label (cjt188.go reads its text).
			i, err = strconv.ParseInt(n.Value, 10, 64)
		}
		if n.Kind != yaml.ScalarNode || err != nil {
			d.problems.at(n, path, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.problems.at(n, path, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.problems.at(n, path, "unsupported value") // a programming error in Config, not the file
	}
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Size is a byte count written as 1000000, 64MiB, 512KB or 1GB.
type Size int64

// ParseSize reads a byte count with an optional unit suffix.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suf  string
		mult int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suf) {
			mult, t = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suf))
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size; expected e.g. 64MiB, 512KB or 1000000", s)
	}
	return Size(n * mult), nil
}
