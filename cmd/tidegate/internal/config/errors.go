package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every validation failure, so callers can tell a bad
// file (exit 2) from an unreadable one.
var ErrInvalid = errors.New("invalid configuration")

// Problem is one thing wrong in a config file, with where it was written.
type Problem struct {
	File   string
	Line   int
	Column int
	Path   string // e.g. meters[3].address
	What   string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	if p.Path == "" {
		return fmt.Sprintf("%s: %s", loc, p.What)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Path, p.What)
}

// Problems is every problem found in one file; as an error it prints one per line.
type Problems struct {
	File string
	List []Problem
}

func (ps *Problems) at(n *yaml.Node, path, format string, a ...any) {
	p := Problem{File: ps.File, Path: path, What: fmt.Sprintf(format, a...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	ps.List = append(ps.List, p)
}

func (ps *Problems) Error() string {
	sort.SliceStable(ps.List, func(i, j int) bool {
		a, b := ps.List[i], ps.List[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	lines := make([]string, len(ps.List))
	for i, p := range ps.List {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) Unwrap() error { return ErrInvalid }
