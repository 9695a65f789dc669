package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// jwtShape finds any compact JWT; base64Secret any 32-byte base64 value
// (the shape of every secret the sandbox generates).
var (
	jwtShape     = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
	base64Secret = regexp.MustCompile(`[A-Za-z0-9+/]{43}=`)
)

// assertNoLeak fails if any known value, or anything shaped like a token or
// a generated secret, appears in the output.
func assertNoLeak(t *testing.T, where, output string, known ...string) {
	t.Helper()
	for _, k := range known {
		if k != "" && strings.Contains(output, k) {
			t.Errorf("%s: a secret value (fingerprint %s) appears in the output", where, secret.Fingerprint(k))
		}
	}
	if m := jwtShape.FindString(output); m != "" {
		t.Errorf("%s: a token (%s) appears in the output", where, secret.NewToken(m))
	}
	if m := base64Secret.FindString(output); m != "" {
		t.Errorf("%s: a secret-shaped value (%s) appears in the output", where, secret.Fingerprint(m))
	}
}

func TestNoCommandPrintsASecretOrToken(t *testing.T) {
	t.Parallel()
	rw := startRotated(t, testbed.Options{PropagationDelay: 50 * time.Millisecond}, true)
	if err := rw.w.SimulateUsers(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	// A token the API really issued, for the token commands.
	s, err := (&probes.Client{BaseURL: rw.w.APIURL, Profile: rw.w.Profile}).Login(t.Context(), rw.w.ProbeEmail, secret.NewSecret(rw.w.ProbePassword))
	if err != nil {
		t.Fatal(err)
	}
	issued := s.Access.Reveal()
	known := []string{rw.old, rw.new, rw.w.ProbePassword, issued, s.Refresh.Reveal()}
	dir := t.TempDir()
	env := append(append([]string{}, rw.env...), awsEnv(rw.w)...)
	env = append(env, "VALINE_LOG_LEVEL=debug", "VALINE_TOKEN="+issued)
	stdinSecrets := "VALINE_PROBE_PASSWORD=" + rw.w.ProbePassword + "\nVALINE_OLD_SECRET=" + rw.old + "\n"
	envNoSecrets := []string{}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VALINE_PROBE_PASSWORD=") && !strings.HasPrefix(kv, "VALINE_OLD_SECRET=") {
			envNoSecrets = append(envNoSecrets, kv)
		}
	}
	claims := filepath.Join(dir, "claims.json")
	if err := os.WriteFile(claims, []byte(`{"sub":"u1","typ":"access"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	runs := []struct {
		name  string
		env   []string
		stdin string
		args  []string
	}{
		{"grace text", env, "", []string{"after-rotation", "--expect", "grace", "--report-file", filepath.Join(dir, "grace.txt")}},
		{"grace json", env, "", []string{"after-rotation", "--expect", "grace", "-o", "json", "--report-file", filepath.Join(dir, "grace.json")}},
		{"strict junit, failing", env, "", []string{"after-rotation", "--expect", "strict", "-o", "junit", "--report-file", filepath.Join(dir, "strict.xml"), "--convergence", "200ms"}},
		{"secrets on stdin", envNoSecrets, stdinSecrets, []string{"after-rotation", "--expect", "grace", "--env-stdin"}},
		{"old token given", append(append([]string{}, env...), "VALINE_OLD_TOKEN="+forgeOld(t, issued, rw.old)), "", []string{"after-rotation", "--expect", "grace"}},
		{"token inspect", env, "", []string{"token", "inspect"}},
		{"token inspect json from stdin", envNoSecrets, issued + "\n", []string{"token", "inspect", "-o", "json"}},
		{"token which", env, "", []string{"token", "which"}},
		{"token forge", env, "", []string{"token", "forge", "--with-old", "--out", filepath.Join(dir, "forged.jwt")}},
		{"token forge from claims", env, "", []string{"token", "forge", "--claims-file", claims, "--expires-in", "5m", "--out", filepath.Join(dir, "forged2.jwt")}},
		{"token forge without out", env, "", []string{"token", "forge"}},
		{"help", env, "", []string{"after-rotation", "--help"}},
		{"sandbox", nil, "", []string{"sandbox", "--propagation", "100ms"}},
		{"sandbox json", nil, "", []string{"sandbox", "--propagation", "100ms", "-o", "junit", "--log-level", "debug"}},
		{"sandbox valine", nil, "", []string{"sandbox", "--backend", "valine", "--propagation", "100ms", "--log-level", "debug"}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			got := runCLI(t, r.env, r.stdin, r.args...)
			if got.code == exitEnvError {
				t.Errorf("environment failure:\n%s", got)
			}
			assertNoLeak(t, r.name, got.stdout+got.stderr, known...)
		})
	}
	for _, f := range []string{"grace.txt", "grace.json", "strict.xml"} {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		assertNoLeak(t, f, string(raw), known...)
	}
	forged, err := os.ReadFile(filepath.Join(dir, "forged.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if !probes.SignedWith(secret.NewToken(strings.TrimSpace(string(forged))), secret.NewSecret(rw.old)) {
		t.Error("token forge --with-old wrote a token not signed with the old secret")
	}
	if st, _ := os.Stat(filepath.Join(dir, "forged.jwt")); st.Mode().Perm() != 0o600 {
		t.Errorf("forged token file mode %v, want 0600", st.Mode().Perm())
	}
}

func forgeOld(t *testing.T, issued, old string) string {
	t.Helper()
	claims, err := probes.Claims(secret.NewToken(issued))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := probes.Forge(claims, jwt.SigningMethodHS256, secret.NewSecret(old))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

// TestSandboxServeWorksAsPrinted follows --serve's printed instructions:
// the env file it names drives after-rotation against the running world;
// an interrupt ends it with exit 0; no secret reaches the terminal.
func TestSandboxServeWorksAsPrinted(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), binary, "sandbox", "--serve", "--propagation", "100ms")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var exports []string
	envFile := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "export ") {
			exports = append(exports, strings.Fields(strings.TrimPrefix(trimmed, "export "))...)
		}
		if i := strings.Index(line, "--env-stdin < "); i >= 0 {
			envFile = strings.TrimSpace(line[i+len("--env-stdin < "):])
			break
		}
	}
	if envFile == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("no instructions printed:\n%s\n%s", out.String(), stderr.String())
	}
	secrets, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(envFile); st.Mode().Perm() != 0o600 {
		t.Errorf("secrets file mode %v, want 0600", st.Mode().Perm())
	}
	var known []string
	for _, line := range strings.Split(strings.TrimSpace(string(secrets)), "\n") {
		_, v, _ := strings.Cut(line, "=")
		known = append(known, v)
	}
	got := runCLI(t, exports, string(secrets), "after-rotation", "--expect", "strict", "--env-stdin", "--since", "1m")
	if got.code != exitOK {
		t.Errorf("after-rotation as printed by --serve:\n%s", got)
	}
	assertNoLeak(t, "after-rotation against --serve", got.stdout+got.stderr, known...)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(&out) }()
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandbox --serve after interrupt: %v\n%s", err, stderr.String())
	}
	assertNoLeak(t, "sandbox --serve", out.String()+stderr.String(), known...)
	if _, err := os.Stat(envFile); !os.IsNotExist(err) {
		t.Errorf("secrets file %s left behind after exit", envFile)
	}
}

// TestFleetCommandsPrintNoSecret runs every fleet command against a fleet
// whose functions carry a DATABASE_URL with a password, and finds no secret
// (old, new, generated, backed up), no password and no token in any output
// or in the audit file.
func TestFleetCommandsPrintNoSecret(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	dbURL := ""
	if env, _, err := f.w.Env(t.Context(), f.w.Function); err == nil {
		dbURL = env["DATABASE_URL"]
	}
	dbPassword := strings.TrimPrefix(strings.Split(strings.Split(dbURL, "@")[0], ":")[2], "")
	backup := rotate.Backup{API: secretsmanager.NewFromConfig(f.w.AWS), Name: "valine-check/" + strings.TrimSuffix(f.w.Functions[0], "auth")} // the prefix as typed
	known := []string{f.w.InitialSecret(), f.w.ProbePassword, dbPassword, dbURL}
	collect := func() {
		for _, read := range []func(context.Context) (secret.Secret, error){backup.Current, backup.Previous} {
			if s, err := read(t.Context()); err == nil {
				known = append(known, string(s.Reveal()))
			}
		}
	}
	var outputs []string
	for _, args := range [][]string{
		{"preflight"},
		{"rotate", "--mode", "maintenance", "--dry-run"},
		{"rotate", "--mode", "zero-downtime"},
		{"status"},
		{"status", "-o", "json"},
		{"finalize", "--dry-run", "--force"},
		{"finalize", "--force"},
		{"rollback", "--dry-run"},
		{"rollback"},
		{"--log-level", "debug", "rotate", "--mode", "maintenance"},
		{"status"},
	} {
		got := runCLI(t, f.env, "", args...)
		if got.code != exitOK {
			t.Fatalf("%v:\n%s", args, got)
		}
		outputs = append(outputs, got.stdout+got.stderr)
		collect()
	}
	if len(known) < 8 {
		t.Fatalf("only %d known values collected; the backup was not read", len(known))
	}
	audit, err := os.ReadFile(f.audit)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(audit))
	for i, out := range outputs {
		assertNoLeak(t, fmt.Sprintf("output %d", i), out, known...)
	}
}

// TestNoFlagTakesASecret keeps secrets out of argument lists (ps, shell
// history, CI logs): no flag of any command may be named for a secret
// value. Flags that carry a name (of a variable, of a Secrets Manager
// secret) are listed here on purpose.
func TestNoFlagTakesASecret(t *testing.T) {
	t.Parallel()
	names := map[string]bool{"secret-var": true, "secondary-var": true, "backup-secret": true, "probe-secret-id": true, "password-field": true,
		"refresh-field": true, "access-field": true, "refresh-cookie": true, "access-cookie": true, "refresh-transport": true, "access-transport": true}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, fl := range c.Flags {
				for _, n := range fl.Names() {
					lower := strings.ToLower(n)
					if (strings.Contains(lower, "secret") || strings.Contains(lower, "password") || strings.Contains(lower, "token")) && !names[n] {
						t.Errorf("%s %s: --%s looks like it takes a secret on the command line", prefix, c.Name, n)
					}
				}
			}
			walk(prefix+" "+c.Name, c.Subcommands)
		}
	}
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	walk("valine-check", app.Commands)
}
