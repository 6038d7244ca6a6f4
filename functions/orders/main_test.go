package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMainStopsWithOneLineNamingWhatIsMissing(t *testing.T) {
	if os.Getenv("ORDERS_RUN_MAIN") == "1" {
		main() // the child: exits before serving
		return
	}
	cases := map[string]struct {
		env  []string
		want []string
	}{
		"nothing set":     {nil, []string{"JWT_KEY", "K_SINK"}},
		"no sink":         {[]string{"JWT_KEY=k"}, []string{"K_SINK"}},
		"bad window":      {[]string{"JWT_KEY=k", "K_SINK=http://127.0.0.1:1", "EXPIRATION_WINDOW=soon"}, []string{"EXPIRATION_WINDOW"}},
		"negative window": {[]string{"JWT_KEY=k", "K_SINK=http://127.0.0.1:1", "EXPIRATION_WINDOW=-1m"}, []string{"EXPIRATION_WINDOW"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainStopsWithOneLineNamingWhatIsMissing$")
			cmd.Env = append([]string{"ORDERS_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "PORT=0"}, c.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; output:\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one line, got:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(lines[0], w) {
					t.Fatalf("%q does not name %s", lines[0], w)
				}
			}
		})
	}
}
