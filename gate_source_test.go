package reconn

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHoldsMadeByGateOnly checks the rule of the right to write that the
// compiler cannot: a hold, the proof that its holder has the right, is
// made only where the right is taken (gate.go, and op.lock in op.go), so
// that a function taking one is called only by a holder.
func TestHoldsMadeByGateOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Skipf("the package's source is not readable here (%d files, %v)", len(files), err)
	}
	fset := token.NewFileSet()
	made := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			fn, ok := n.(*ast.FuncDecl)
			if !ok {
				return true
			}
			where := fn.Name.Name
			if fn.Recv != nil && len(fn.Recv.List) > 0 {
				where = recvType(fn.Recv.List[0].Type) + "." + where
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				if id, ok := cl.Type.(*ast.Ident); ok && id.Name == "hold" {
					made++
					switch where {
					case "gate.lockFast", "gate.lockCtx", "op.lock":
					default:
						t.Errorf("%s: %s makes a hold; only gate.lockFast, gate.lockCtx and op.lock may", fset.Position(cl.Pos()), where)
					}
				}
				return true
			})
			return false
		})
	}
	if made == 0 {
		t.Fatal("no hold is made anywhere: the test no longer finds them")
	}
}

// recvType returns the name of a receiver's type, without its pointer.
func recvType(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}
