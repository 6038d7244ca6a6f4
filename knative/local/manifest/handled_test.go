package manifest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tickit/tickit/events"
)

// The Triggers come from events.Catalogue; this reads the functions' code to check that the
// catalogue says what the functions really handle: the keys of their
// map[string]runtime.EventHandler literals (runtime.Function.Events).

// eventConstants maps the names of the events package's string constants to their values.
func eventConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	consts := map[string]string{}
	for _, f := range goFiles(t, dir) {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	return consts
}

// goFiles parses the non-test Go files of dir.
func goFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// handledTypes returns the event types a function's code handles, sorted.
func handledTypes(t *testing.T, dir string, consts map[string]string) []string {
	t.Helper()
	var types []string
	for _, f := range goFiles(t, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || !isHandlerMap(lit.Type) {
				return true
			}
			for _, elt := range lit.Elts {
				kv := elt.(*ast.KeyValueExpr)
				sel, ok := kv.Key.(*ast.SelectorExpr)
				if !ok || !isIdent(sel.X, "events") || consts[sel.Sel.Name] == "" {
					t.Errorf("%s: handler key %T is not an events.Type constant", dir, kv.Key)
					continue
				}
				types = append(types, consts[sel.Sel.Name])
			}
			return true
		})
	}
	slices.Sort(types)
	return types
}

func isIdent(expr ast.Expr, name string) bool {
	id, ok := expr.(*ast.Ident)
	return ok && id.Name == name
}

// isHandlerMap reports whether expr is the type map[string]runtime.EventHandler.
func isHandlerMap(expr ast.Expr) bool {
	m, ok := expr.(*ast.MapType)
	if !ok {
		return false
	}
	value, ok := m.Value.(*ast.SelectorExpr)
	return ok && isIdent(m.Key, "string") && value.Sel.Name == "EventHandler"
}

func TestTheCatalogueIsWhatTheFunctionsHandle(t *testing.T) {
	dir := root(t)
	consts := eventConstants(t, filepath.Join(dir, "events"))
	if consts["TypeOrderCreated"] != events.TypeOrderCreated {
		t.Fatalf("could not read the events constants: %v", consts)
	}
	for _, fn := range functionNames {
		t.Run(fn, func(t *testing.T) {
			// Act
			got := handledTypes(t, filepath.Join(dir, "functions", fn), consts)

			// Assert
			want := slices.Sorted(slices.Values(events.Consumed(fn)))
			if !slices.Equal(got, want) {
				t.Errorf("the code handles %v, events.Catalogue (and so the Triggers) says %v", got, want)
			}
		})
	}
}

func TestHandledTypesReadsHandlerMaps(t *testing.T) {
	// Arrange: a handler map, a map of another type, and constants.
	dir := t.TempDir()
	src := `package x

const TypeA = "dev.a"

var handlers = map[string]runtime.EventHandler{events.TypeA: nil}
var other = map[string]int{events.TypeB: 1}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	// Act
	consts := eventConstants(t, dir)
	got := handledTypes(t, dir, consts)

	// Assert
	if !slices.Equal(got, []string{"dev.a"}) {
		t.Fatalf("handled %v, want [dev.a]", got)
	}
}
