package serving

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// Build compiles the Go main packages (import paths of the workspace at root) into binDir in
// one go build, which Go's build cache makes quick after the first time. It returns each
// package's binary path.
func Build(ctx context.Context, root, binDir string, pkgs []string) (map[string]string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return nil, err
	}
	args := append([]string{"build", "-o", abs + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out.String())
	}
	bins := map[string]string{}
	for _, p := range pkgs {
		bins[p] = filepath.Join(abs, path.Base(p))
	}
	return bins, nil
}
