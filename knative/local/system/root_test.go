package system

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTheRepositoryIsFoundFromASubdirectory(t *testing.T) {
	want, _ := filepath.Abs("../../..")
	t.Chdir(".")
	got, err := Root()
	if err != nil || got != want {
		t.Fatalf("Root = %q, %v; want %q", got, err, want)
	}
	t.Chdir(os.TempDir())
	if _, err := Root(); err == nil {
		t.Fatal("found a repository above the temp dir")
	}
}
