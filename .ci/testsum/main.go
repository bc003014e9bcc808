// Command testsum turns `go test -json` back into go test's usual terse
// output (the ok/FAIL line of each package, the output of failing tests
// only) while keeping the events in a file, and lists the skipped tests
// with their reasons afterwards: go test shows a skip only with -v, so a
// newcomer without ../shared or mosquitto would not know what did not run.
//
//	go test -json ./... 2>&1 | go run ./.ci/testsum -o unit.json
//	go run ./.ci/testsum -skips unit.json ...
//
// It lives under .ci/ so `go test ./...` and `go vet ./...` leave it out.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output events
}

func main() {
	out := flag.String("o", "", "also write the events read from stdin to this file")
	skips := flag.Bool("skips", false, "list the skipped tests of the event files given as arguments")
	flag.Parse()
	if *skips {
		if _, err := listSkips(os.Stdout, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		return
	}
	var raw io.Writer = io.Discard
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		defer f.Close()
		raw = f
	}
	failed := stream(os.Stdin, os.Stdout, raw)
	if failed {
		os.Exit(1)
	}
}

type key struct{ pkg, test string }

// stream prints what go test without -v would have printed. It reports
// whether anything failed.
func stream(in io.Reader, w io.Writer, raw io.Writer) bool {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	buf := map[key][]string{}        // output of tests still running
	running := map[string][]string{} // package -> its running tests, in start order
	failed := false
	for sc.Scan() {
		line := sc.Bytes()
		fmt.Fprintf(raw, "%s\n", line)
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // go test's own messages, e.g. a build error on stderr
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			if o := e.Output; o != "PASS\n" && !strings.HasPrefix(o, "=== ") {
				fmt.Fprint(w, o)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
			// A test still running when its package failed (a timeout, a
			// panic): its output is the only clue.
			for _, t := range running[e.Package] {
				printTest(w, buf[key{e.Package, t}])
				delete(buf, key{e.Package, t})
			}
			delete(running, e.Package)
		case e.Test == "":
		case e.Action == "run":
			running[e.Package] = append(running[e.Package], e.Test)
		case e.Action == "output":
			k := key{e.Package, e.Test}
			buf[k] = append(buf[k], e.Output)
		case e.Action == "pass" || e.Action == "skip" || e.Action == "fail":
			k := key{e.Package, e.Test}
			if e.Action == "fail" {
				failed = true
				printTest(w, buf[k])
			}
			delete(buf, k)
			r := running[e.Package]
			for i, t := range r {
				if t == e.Test {
					running[e.Package] = append(r[:i:i], r[i+1:]...)
					break
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(w, "testsum:", err)
		return true
	}
	return failed
}

// printTest prints a failed test's output as go test does: its --- FAIL
// line first, then what it logged, without the === RUN/PAUSE/CONT lines
// that only -v shows.
func printTest(w io.Writer, lines []string) {
	var head, body []string
	for _, l := range lines {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, "=== "):
		case strings.HasPrefix(t, "--- "):
			head = append(head, l)
		default:
			body = append(body, l)
		}
	}
	fmt.Fprint(w, strings.Join(head, "")+strings.Join(body, ""))
}

type skip struct {
	pkg, test, reason string
}

// listSkips prints one line per skipped test (each once, however many
// runs); it returns how many.
func listSkips(w io.Writer, files []string) (int, error) {
	seen := map[key]bool{}
	var all []skip
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return 0, err
		}
		buf := map[key][]string{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
				continue
			}
			k := key{e.Package, e.Test}
			switch e.Action {
			case "output":
				buf[k] = append(buf[k], e.Output)
			case "skip":
				if !seen[k] {
					seen[k] = true
					all = append(all, skip{e.Package, e.Test, reason(buf[k])})
				}
				delete(buf, k)
			case "pass", "fail":
				delete(buf, k)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].pkg != all[j].pkg {
			return all[i].pkg < all[j].pkg
		}
		return all[i].test < all[j].test
	})
	if len(all) == 0 {
		fmt.Fprintln(w, "skipped: none")
		return 0, nil
	}
	fmt.Fprintf(w, "skipped: %d tests\n", len(all))
	for _, s := range all {
		fmt.Fprintf(w, "  SKIP %s %s: %s\n", s.pkg, s.test, s.reason)
	}
	return len(all), nil
}

// reason is a skipped test's message: the last thing it logged (t.Skip's
// text comes last), without go test's framing lines.
func reason(lines []string) string {
	last := ""
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		if strings.HasPrefix(l, "        ") && last != "" { // a continuation line of a multi-line message
			last += " " + t
			continue
		}
		last = t
	}
	if last == "" {
		return "(no reason given)"
	}
	return last
}
