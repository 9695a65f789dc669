package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/rotate"
)

// binary is the valine-check command built once for these tests: they run
// it as a user would, and judge exit codes, stdout, stderr and files.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "valine-check-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "valine-check")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building valine-check:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliRun is one finished run of the command.
type cliRun struct {
	stdout, stderr string
	code           int
}

func (r cliRun) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs the binary with only the given environment (plus PATH and
// HOME), so nothing from the developer's shell or AWS setup leaks in.
func runCLI(t *testing.T, env []string, stdin string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_EC2_METADATA_DISABLED=true"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running valine-check: %v", err)
	}
	return cliRun{stdout: out.String(), stderr: errb.String(), code: code}
}

// rotatedWorld is a testbed world whose secret was rotated (finalized, no
// secondary), with the secrets and the environment to point the CLI at it.
type rotatedWorld struct {
	w        *testbed.World
	old, new string
	env      []string
}

func startRotated(t *testing.T, opts testbed.Options, grace bool) rotatedWorld {
	t.Helper()
	w, err := testbed.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	next, err := rotate.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	secondary := ""
	if grace {
		secondary = w.InitialSecret()
	}
	if err := w.SetSecrets(t.Context(), string(next.Reveal()), secondary); err != nil {
		t.Fatal(err)
	}
	rw := rotatedWorld{w: w, old: w.InitialSecret(), new: string(next.Reveal())}
	rw.env = []string{
		"VALINE_API_URL=" + w.APIURL,
		"VALINE_PROFILE=" + w.Profile.Name,
		"VALINE_PROBE_EMAIL=" + w.ProbeEmail,
		"VALINE_PROBE_PASSWORD=" + w.ProbePassword,
		"VALINE_OLD_SECRET=" + rw.old,
		"VALINE_SECRET=" + rw.new,
		"VALINE_CONVERGENCE=3s",
	}
	return rw
}

// awsEnv points the SDK's standard configuration at the world's emulator.
func awsEnv(w *testbed.World) []string {
	return []string{"AWS_ENDPOINT_URL=" + w.AWSURL, "AWS_REGION=" + w.Region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "VALINE_FUNCTION=" + w.Function}
}
