package kindpath

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

// The stand-ins: this test binary, run under a tool's name with STANDIN_LOG set, appends one
// call (tool, arguments, the environment ko reads, what it read on stdin) to STANDIN_LOG as a
// JSON line and answers as the tool would. What a cluster holds (Secrets) lives in files
// under STANDIN_STATE. Settings: STANDIN_CONTEXT (the user's current kubectl context),
// STANDIN_ARCH (the node's), STANDIN_MISSING (a URL curl answers 404 for), STANDIN_KIND_VERSION,
// STANDIN_CLUSTERS (kind get clusters), STANDIN_USED_IMAGES (images the Revisions use),
// STANDIN_DOCKER_INFO (docker's CPUs and memory in bytes).
var standIns = []string{"docker", "kind", "kubectl", "ko", "kn", "curl", "make", "npm", "node", "go"}

// koEnv are the variables that decide what ko builds and where it puts it.
var koEnv = []string{"KO_DOCKER_REPO", "KIND_CLUSTER_NAME", "KO_DEFAULTPLATFORMS", "GOOS", "GOARCH", "GOARM"}

// call is one recorded invocation of a stand-in.
type call struct {
	Tool  string            `json:"tool"`
	Args  []string          `json:"args"`
	Env   map[string]string `json:"env,omitempty"`
	Stdin string            `json:"stdin,omitempty"`
}

func (c call) String() string { return c.Tool + " " + strings.Join(c.Args, " ") }

// has reports whether the call's arguments contain every one of want.
func (c call) has(want ...string) bool {
	for _, w := range want {
		if !slices.Contains(c.Args, w) {
			return false
		}
	}
	return true
}

// standIn runs the stand-in named tool and returns its exit status.
func standIn(tool string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := call{Tool: tool, Args: args, Env: map[string]string{}}
	for _, k := range koEnv {
		if v, ok := os.LookupEnv(k); ok {
			c.Env[k] = v
		}
	}
	var in []byte
	if slices.Contains(args, "-") || (tool == "kubectl" && slices.Contains(args, "--local")) {
		in, _ = io.ReadAll(stdin)
		c.Stdin = string(in)
	}
	out, status := answer(c, in)
	fmt.Fprint(stdout, out)
	if status != 0 {
		fmt.Fprintf(stderr, "%s: stand-in refuses %v\n", tool, args)
	}
	// Logged last: a tool at the end of a pipe is logged after the ones feeding it.
	line, _ := json.Marshal(c)
	f, err := os.OpenFile(os.Getenv("STANDIN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 3
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		fmt.Fprintln(stderr, err)
		return 3
	}
	return status
}

// answer is what the tool prints and its exit status.
func answer(c call, in []byte) (string, int) {
	a := c.Args
	switch c.Tool {
	case "kind":
		switch {
		case len(a) > 0 && a[0] == "version":
			return envOr("STANDIN_KIND_VERSION", "kind v0.33.0 go1.26.8 linux/amd64") + "\n", 0
		case c.has("get", "clusters"):
			return os.Getenv("STANDIN_CLUSTERS"), 0
		case c.has("get", "nodes"):
			return "tickit-control-plane\n", 0
		}
	case "docker":
		switch {
		case len(a) > 0 && a[0] == "info":
			return envOr("STANDIN_DOCKER_INFO", "8 17179869184") + "\n", 0
		case c.has("crictl", "images"):
			return "IMAGE                                     TAG      IMAGE ID   SIZE\n" +
				"kind.local/stale-0abc                     1111     aaa        10MB\n" +
				"kind.local/kept-0abc                      2222     bbb        10MB\n" +
				"gcr.io/knative-releases/knative.dev/x     v1       ccc        20MB\n", 0
		}
	case "curl":
		url, file := a[len(a)-1], valueOf(a, "-o")
		if m := os.Getenv("STANDIN_MISSING"); m != "" && url == m {
			return "404", 0
		}
		if err := os.WriteFile(file, []byte("# "+url+"\n"), 0o644); err != nil {
			return "", 23
		}
		return "200", 0
	case "node":
		return "v22.12.0\n", 0
	case "go":
		if c.has("env", "GOVERSION") {
			return "go1.26.8\n", 0
		}
	case "ko":
		if len(a) > 0 && a[0] == "build" {
			return "kind.local/" + filepath.Base(a[len(a)-1]) + "-0123:cafe\n", 0
		}
		if len(a) > 0 && a[0] == "resolve" {
			data, err := os.ReadFile(valueOf(a, "-f"))
			if err != nil {
				return "", 1
			}
			return koImage.ReplaceAllStringFunc(string(data), func(ref string) string {
				return "kind.local/" + filepath.Base(ref) + "-0123:cafe"
			}), 0
		}
	case "kubectl":
		return kubectl(c, in)
	}
	return "", 0
}

var koImage = regexp.MustCompile(`ko://[^\s"]+`)

func kubectl(c call, in []byte) (string, int) {
	a := c.Args
	if len(a) > 1 && a[0] == "--context" {
		a = a[2:]
	}
	if len(a) == 0 {
		return "", 1
	}
	output := valueOf(a, "-o")
	words := positional(a)
	switch a[0] {
	case "config":
		if a[1] == "current-context" {
			if ctx := os.Getenv("STANDIN_CONTEXT"); ctx != "" {
				return ctx + "\n", 0
			}
			return "", 1
		}
		return "", 0
	case "get":
		switch words[1] {
		case "nodes":
			return envOr("STANDIN_ARCH", "amd64"), 0
		case "broker":
			return "http://broker-ingress.knative-eventing.svc.cluster.local/tickit/default", 0
		case "revisions":
			return os.Getenv("STANDIN_USED_IMAGES"), 0
		case "secret":
			data, ok := readSecret(os.Getenv("STANDIN_STATE"), words[2])
			switch {
			case !ok:
				return "", 1
			case output == "jsonpath={.data}":
				b, _ := json.Marshal(data)
				return string(b), 0
			case strings.HasPrefix(output, "jsonpath={.data."):
				return data[strings.TrimSuffix(strings.TrimPrefix(output, "jsonpath={.data."), "}")], 0
			}
		}
		return "", 0
	case "create":
		if !slices.Contains(a, "--dry-run=client") {
			return "", storeSecrets(readFile(valueOf(a, "-f")))
		}
		switch {
		case words[1] == "secret":
			data := map[string]string{}
			for i, arg := range a {
				if arg == "--from-literal" || strings.HasPrefix(arg, "--from-literal=") {
					kv := strings.TrimPrefix(arg, "--from-literal=")
					if arg == "--from-literal" {
						kv = a[i+1]
					}
					k, v, _ := strings.Cut(kv, "=")
					data[k] = base64.StdEncoding.EncodeToString([]byte(v))
				}
			}
			return toYAML(map[string]any{"apiVersion": "v1", "kind": "Secret",
				"metadata": map[string]any{"name": words[3], "namespace": valueOf(a, "--namespace")}, "data": data}), 0
		case words[1] == "configmap":
			return toYAML(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": words[2]}}), 0
		case output == "jsonpath={.metadata.name}":
			docs := documents(readFile(valueOf(a, "-f")))
			return docs[0]["metadata"].(map[string]any)["name"].(string), 0
		case output == "jsonpath={..secretKeyRef.name}":
			var names []string
			for _, d := range documents(readFile(valueOf(a, "-f"))) {
				names = append(names, secretRefs(d)...)
			}
			return strings.Join(names, " "), 0
		}
		return "", 1
	case "apply":
		if valueOf(a, "-f") == "-" {
			return "", storeSecrets(in)
		}
		return "", 0
	case "patch":
		if !slices.Contains(a, "--local") {
			return "", 0
		}
		var patch map[string]any
		if err := json.Unmarshal([]byte(valueOf(a, "-p")), &patch); err != nil {
			return "", 1
		}
		var out strings.Builder
		for _, d := range documents(in) {
			out.WriteString("---\n" + toYAML(mergePatch(d, patch).(map[string]any)))
		}
		return out.String(), 0
	}
	return "", 0
}

// valueFlags are the kubectl flags that take the next argument as their value.
var valueFlags = []string{"--context", "--namespace", "-n", "-o", "-f", "--selector", "-l", "--for", "--timeout",
	"--type", "-p", "--patch", "--from-literal", "--from-file"}

// positional are the arguments that are not flags or flag values (verb, resource, name).
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch {
		case slices.Contains(valueFlags, args[i]):
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			out = append(out, args[i])
		}
	}
	return append(out, "", "", "", "")
}

// valueOf is the argument after flag, or the value of flag=value.
func valueOf(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func readFile(name string) []byte {
	b, _ := os.ReadFile(name)
	return b
}

func toYAML(v map[string]any) string {
	b, _ := sigsyaml.Marshal(v)
	return string(b)
}

// documents splits multi-document YAML into objects (comments and empty documents dropped).
func documents(data []byte) []map[string]any {
	var out []map[string]any
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &m); err == nil && m != nil {
			out = append(out, m)
		}
	}
	return out
}

// secretRefs are the names of the Secrets an object's secretKeyRefs name, as kubectl's
// jsonpath {..secretKeyRef.name} lists them.
func secretRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if ref, ok := e.(map[string]any); ok && k == "secretKeyRef" {
				out = append(out, ref["name"].(string))
				continue
			}
			out = append(out, secretRefs(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, secretRefs(e)...)
		}
	}
	return out
}

// mergePatch applies a JSON merge patch (RFC 7386), as kubectl patch --type merge does.
func mergePatch(dst, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := dst.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = mergePatch(d[k], v)
	}
	return d
}

// storeSecrets keeps every Secret in data (stringData or base64 data) under STANDIN_STATE.
func storeSecrets(data []byte) int {
	for _, d := range documents(data) {
		if d["kind"] != "Secret" {
			continue
		}
		values := map[string]string{}
		if m, ok := d["data"].(map[string]any); ok {
			for k, v := range m {
				values[k] = fmt.Sprint(v)
			}
		}
		if m, ok := d["stringData"].(map[string]any); ok {
			for k, v := range m {
				values[k] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
			}
		}
		b, _ := json.Marshal(values)
		name := d["metadata"].(map[string]any)["name"].(string)
		if err := os.WriteFile(filepath.Join(os.Getenv("STANDIN_STATE"), "secret-"+name+".json"), b, 0o644); err != nil {
			return 1
		}
	}
	return 0
}

// readSecret is the data (base64 values) of the Secret name kept under dir.
func readSecret(dir, name string) (map[string]string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "secret-"+name+".json"))
	if err != nil {
		return nil, false
	}
	var m map[string]string
	return m, json.Unmarshal(b, &m) == nil
}

// readLog parses the calls STANDIN_LOG holds, in order.
func readLog(file string) ([]call, error) {
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var calls []call
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var c call
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		calls = append(calls, c)
	}
	return calls, nil
}
