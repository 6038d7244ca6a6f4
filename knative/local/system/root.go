package system

// root.go finds the repository the runtime reads its manifests and functions from.

import (
	"errors"
	"os"
	"path/filepath"
)

// Root is the repository: the directory holding go.work, from the working directory upwards.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in this directory or above: run from the tickit repository")
		}
		dir = parent
	}
}
