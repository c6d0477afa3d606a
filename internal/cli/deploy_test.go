package cli

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment artifacts (deploy/, Dockerfile; docs/deploy.md) are tested against the
// code they run: every command line they hold goes through the real command tree's flag
// parser, every gate.yaml through parseGateFile, and the Dockerfile's build command is run.
// The Kubernetes manifests are also decoded strictly with the Kubernetes API types in the
// separate module deploy/k8stest (kept out of this go.mod).

const deployDir = "../../deploy"

// checkCommandLine parses args (without the program name) with warden's command tree
// the way Main would, without running the command.
func checkCommandLine(t *testing.T, where string, args []string) {
	t.Helper()
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%s: %q is not a warden command: %v", where, strings.Join(args, " "), err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: warden %s: %v", where, strings.Join(args, " "), err)
		return
	}
	// cobra checks that a required flag was given, not that it has a value from the
	// environment: a unit must pass it on the command line.
	if err := cmd.ValidateRequiredFlags(); err != nil {
		t.Errorf("%s: warden %s: %v", where, strings.Join(args, " "), err)
	}
	if cmd.Args != nil {
		if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
			t.Errorf("%s: warden %s: %v", where, strings.Join(args, " "), err)
		}
	}
}

// unitFile is one systemd unit: its [Service] keys (the last value of each, and every
// Environment/ExecStart line).
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: not key=value: %q", path, line)
				continue
			}
			keys[section+k] = append(keys[section+k], v)
		}
	}
	return keys
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

// expandExec expands an ExecStart line as systemd does for the forms the units use:
// %i, ${VAR} (one word) and $VAR (split on white space).
func expandExec(line, instance string, env map[string]string) []string {
	line = strings.ReplaceAll(line, "%i", instance)
	var out []string
	for _, w := range strings.Fields(line) {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			out = append(out, env[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "$MAINPID"):
			out = append(out, strings.Fields(env[w[1:]])...)
		default:
			out = append(out, w)
		}
	}
	return out
}

// TestSystemdUnits: each unit's ExecStart, with the example environment files and the
// instance vendor-portal, is a warden command line whose flags parse; units that take a
// gate.yaml point at one the examples provide, and those parse; reload sends SIGHUP.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(deployDir, "systemd")
	envs := map[string]map[string]string{
		"warden-server.service":  readEnvFile(t, filepath.Join(dir, "server.env")),
		"warden-enroll@.service": readEnvFile(t, filepath.Join(dir, "enroll-vendor-portal.env")),
		"warden-gate@.service":   {},
	}
	for unit, env := range envs {
		keys := readUnit(t, filepath.Join(dir, unit))
		execs := keys["[Service]ExecStart"]
		if len(execs) != 1 {
			t.Fatalf("%s: %d ExecStart lines", unit, len(execs))
		}
		for _, inst := range []string{"vendor-portal", "vendor-portal-out"} {
			args := expandExec(execs[0], inst, env)
			if args[0] != "/usr/local/bin/warden" {
				t.Errorf("%s: runs %s", unit, args[0])
				continue
			}
			checkCommandLine(t, unit, args[1:])
			for i, a := range args {
				if a == "--config" && args[1] == "gate" {
					example := filepath.Join(dir, strings.TrimPrefix(args[i+1], "/etc/warden/"))
					b, err := os.ReadFile(example)
					if err != nil {
						t.Errorf("%s: no example for %s: %v", unit, args[i+1], err)
						continue
					}
					if _, err := parseGateFile(b); err != nil {
						t.Errorf("%s: %s: %v", unit, example, err)
					}
				}
			}
			if !strings.Contains(execs[0], "%i") {
				break // one instance is enough
			}
		}
		if r := keys["[Service]ExecReload"]; len(r) != 1 || r[0] != "/bin/kill -HUP $MAINPID" {
			t.Errorf("%s: ExecReload %q, want SIGHUP (the reload entry point)", unit, r)
		}
	}
}

// k8sDocs returns the documents of a multi-document YAML file as generic maps.
func k8sDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// TestKubernetesCommandsAndGateConfig: every warden container of deploy/k8s runs a
// command line whose flags parse, and every gate.yaml in a ConfigMap parses.
func TestKubernetesCommandsAndGateConfig(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	gates, wardens := 0, 0
	for _, f := range files {
		for _, d := range k8sDocs(t, f) {
			if d["kind"] == "ConfigMap" {
				if data, _ := d["data"].(map[string]any); data != nil {
					if g, ok := data["gate.yaml"].(string); ok {
						gates++
						if _, err := parseGateFile([]byte(g)); err != nil {
							t.Errorf("%s: gate.yaml: %v", f, err)
						}
					}
				}
			}
			spec, _ := d["spec"].(map[string]any)
			tmpl, _ := spec["template"].(map[string]any)
			pod, _ := tmpl["spec"].(map[string]any)
			for _, list := range []string{"initContainers", "containers"} {
				cs, _ := pod[list].([]any)
				for _, c := range cs {
					c := c.(map[string]any)
					if img, _ := c["image"].(string); !strings.Contains(img, "/warden:") {
						continue
					}
					wardens++
					var args []string
					for _, a := range c["args"].([]any) {
						args = append(args, a.(string))
					}
					checkCommandLine(t, f+" "+c["name"].(string), args)
				}
			}
		}
	}
	if gates == 0 || wardens < 3 {
		t.Errorf("found %d gate configs and %d warden containers", gates, wardens)
	}
}

// TestDockerfileBuildsAStaticBinary: the default target's build command, run as the
// Dockerfile runs it, makes a statically linked warden that starts; the final stage runs
// the file the build stage wrote.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM (\S+) AS (\S+)$`).FindAllStringSubmatch(string(b), -1)
	if len(stages) == 0 || stages[len(stages)-1][2] != "runtime" || !strings.Contains(stages[len(stages)-1][1], "distroless/static") {
		t.Fatalf("the default (last) stage is not the static runtime: %v", stages)
	}
	build := string(b)[strings.Index(string(b), "AS build\n"):]
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o (\S+) (\./cmd/warden)$`).FindStringSubmatch(build)
	if m == nil {
		t.Fatal("no CGO_ENABLED=0 go build of ./cmd/warden in the build stage")
	}
	if !strings.Contains(string(b), "COPY --from=build "+m[2]+" /usr/local/bin/warden") ||
		!strings.Contains(string(b), `ENTRYPOINT ["/usr/local/bin/warden"]`) {
		t.Error("the runtime stage does not run what the build stage wrote")
	}
	out := filepath.Join(t.TempDir(), "warden")
	words := shellWords(m[1]) // CGO_ENABLED=0 go build -ldflags="-s -w"
	if len(words) < 3 || words[1] != "go" || words[2] != "build" {
		t.Fatalf("build command %q", m[1])
	}
	cmdArgs := words[2:]
	cmd := exec.Command("go", append(cmdArgs, "-o", out, m[3])...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", cmd.Args[1:], err, o)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader: not static")
		}
	}
	f.Close()
	if o, err := exec.Command(out, "version").CombinedOutput(); err != nil || !strings.Contains(string(o), "warden") {
		t.Errorf("the static binary does not run: %v %s", err, o)
	}
}

// shellWords splits s on blanks as a shell does for the simple forms a Dockerfile RUN
// line uses here: double quotes group, and are removed.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	in, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			in, have = !in, true
		case (r == ' ' || r == '\t') && !in:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
