//go:build linux

package link

import (
	"go/ast"
	"go/build"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// kernelTIOCSRS485 is TIOCSRS485 as the kernel's headers define it:
// include/uapi/asm-generic/ioctls.h (0x542F) for most architectures;
// arch/mips/include/uapi/asm/ioctls.h has _IOWR('T', 0x2F, struct
// serial_rs485) with MIPS's _IOC encoding. (0x5470, which an earlier
// hand-written table used for MIPS, is TIOCPKT there.)
var kernelTIOCSRS485 = map[string]uint64{
	"amd64": 0x542F, "386": 0x542F, "arm": 0x542F, "arm64": 0x542F, "riscv64": 0x542F,
	"loong64": 0x542F, "ppc64le": 0x542F, "s390x": 0x542F,
	"mips": 0xC020542F, "mipsle": 0xC020542F, "mips64": 0xC020542F, "mips64le": 0xC020542F,
}

func TestRS485IoctlNative(t *testing.T) {
	want, ok := kernelTIOCSRS485[runtime.GOARCH]
	if !ok {
		t.Skipf("no kernel TIOCSRS485 on record for GOARCH=%s", runtime.GOARCH)
	}
	if uint64(tiocsrs485) != want {
		t.Fatalf("TIOCSRS485 used is %#x, the kernel's for %s is %#x", uint64(tiocsrs485), runtime.GOARCH, want)
	}
}

// TestRS485IoctlEveryArch evaluates, for each GOARCH, the tiocsrs485 this
// package would be built with (the files the build constraints select, and
// x/sys/unix's value where it names one) and compares it with the kernel's.
// It reads source instead of cross-compiling, which would cost minutes of
// CPU for each architecture's standard library on a fresh machine.
func TestRS485IoctlEveryArch(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH to find golang.org/x/sys: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-f", "{{.Dir}}", "golang.org/x/sys/unix").Output()
	if err != nil {
		t.Fatalf("go list golang.org/x/sys/unix: %v", err)
	}
	unixDir := strings.TrimSpace(string(out))
	for arch, want := range kernelTIOCSRS485 {
		got, err := tiocsrs485For(arch, unixDir)
		if err != nil {
			t.Errorf("GOARCH=%s: %v", arch, err)
			continue
		}
		if got != want {
			t.Errorf("GOARCH=%s: TIOCSRS485 used is %#x, the kernel's is %#x", arch, got, want)
		}
	}
}

// tiocsrs485For is the value of this package's tiocsrs485 when built for
// linux/arch.
func tiocsrs485For(arch, unixDir string) (uint64, error) {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", arch, false
	expr, err := constExpr(&ctx, ".", "tiocsrs485", false)
	if err != nil {
		return 0, err
	}
	switch e := expr.(type) {
	case *ast.BasicLit:
		return literal(e)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); !ok || x.Name != "unix" {
			return 0, errUnexpected(expr)
		}
		ue, err := constExpr(&ctx, unixDir, e.Sel.Name, true)
		if err != nil {
			return 0, err
		}
		lit, ok := ue.(*ast.BasicLit)
		if !ok {
			return 0, errUnexpected(ue)
		}
		return literal(lit)
	}
	return 0, errUnexpected(expr)
}

// constExpr finds the expression of constant name in the files of dir
// that ctx selects (only zerrors_* files when zerrors is set, to stay fast).
func constExpr(ctx *build.Context, dir, name string, zerrors bool) (ast.Expr, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, ent := range ents {
		n := ent.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || (zerrors && !strings.HasPrefix(n, "zerrors_linux")) {
			continue
		}
		if ok, err := ctx.MatchFile(dir, n); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if id.Name == name && i < len(vs.Values) {
						return vs.Values[i], nil
					}
				}
			}
		}
	}
	return nil, &os.PathError{Op: "find const " + name, Path: dir, Err: os.ErrNotExist}
}

func literal(l *ast.BasicLit) (uint64, error) {
	v, ok := constant.Uint64Val(constant.MakeFromLiteral(l.Value, l.Kind, 0))
	if !ok {
		return 0, errUnexpected(l)
	}
	return v, nil
}

type unexpectedExpr struct{ e ast.Expr }

func (u unexpectedExpr) Error() string {
	return "unexpected constant expression " + strings.TrimSpace(exprString(u.e))
}

func errUnexpected(e ast.Expr) error { return unexpectedExpr{e} }

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Value
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "(expression)"
}
