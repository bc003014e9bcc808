package modbus

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestProtocolPure: protocol/ is bytes in, values out (issue 22 item 6):
// none of its packages reads files, opens sockets or decodes YAML; a file
// format lives where configs are loaded (package configs).
func TestProtocolPure(t *testing.T) {
	banned := map[string]bool{"os": true, "io/ioutil": true, "io/fs": true, "net": true, "path/filepath": true,
		"syscall": true, "go.yaml.in/yaml/v3": true, "gopkg.in/yaml.v3": true, "embed": true}
	files, _ := filepath.Glob("../*/*.go")
	if len(files) == 0 {
		t.Fatal("no protocol sources found")
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); banned[p] {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
