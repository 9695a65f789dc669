package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/valine/valine-check/internal/emfspec"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

func TestBuildMakesAZipWithAnExecutableBootstrap(t *testing.T) {
	t.Parallel()
	a := buildForHost(t)
	if a.Arch != runtime.GOARCH || !strings.HasSuffix(a.Path, "valine-probe-"+runtime.GOARCH+".zip") {
		t.Errorf("artifact %+v", a.Artifact)
	}
	// extractBootstrap already held the zip to one bootstrap entry, mode 0755.
	f, err := elf.Open(a.bootstrap)
	if err != nil {
		t.Fatalf("bootstrap is not an ELF executable: %v", err)
	}
	defer f.Close()
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if f.Type != elf.ET_EXEC || f.Machine != wantMachine {
		t.Errorf("ELF type %v machine %v", f.Type, f.Machine)
	}
	// Static (CGO_ENABLED=0): provided.al2023 has no Go toolchain's libc expectations to meet.
	if f.Section(".interp") != nil {
		t.Error("bootstrap is dynamically linked")
	}
	// Stripped (-s -w).
	if f.Section(".symtab") != nil {
		t.Error("bootstrap has a symbol table")
	}
	// Built with -tags lambda.norpc: the runtime API client only, no net/rpc.
	out, err := exec.Command("go", "version", "-m", a.bootstrap).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-tags=lambda.norpc", "-trimpath=true", "CGO_ENABLED=0", "GOOS=linux"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("build settings lack %s:\n%s", want, out)
		}
	}
	bin, err := os.ReadFile(a.bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bin, []byte("net/rpc.")) {
		t.Error("net/rpc is linked in")
	}
	// The same binary gives the same zip.
	again := t.TempDir() + "/again.zip"
	if _, _, err := zipBootstrap(a.bootstrap, again); err != nil {
		t.Fatal(err)
	}
	first := t.TempDir() + "/first.zip"
	if _, _, err := zipBootstrap(a.bootstrap, first); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(first)
	b2, _ := os.ReadFile(again)
	if !bytes.Equal(b1, b2) {
		t.Error("zipping the same bootstrap twice gives different zips")
	}
	zr, err := zip.OpenReader(first)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if zr.File[0].Mode().Perm() != 0o755 {
		t.Errorf("mode %v", zr.File[0].Mode())
	}
	st, _ := os.Stat(a.Path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("zip file mode %v", st.Mode())
	}
}

func TestBuildRefusesAnUnknownArchitecture(t *testing.T) {
	t.Parallel()
	if _, err := Build(context.Background(), Options{Root: ".", OutDir: t.TempDir(), Arches: []string{"386"}}); err == nil || !strings.Contains(err.Error(), "386") {
		t.Errorf("want an error naming 386, got %v", err)
	}
}

// The bootstrap exits at init with the reason when it is misconfigured.
func TestBootstrapRefusesABadConfiguration(t *testing.T) {
	t.Parallel()
	a := buildForHost(t)
	cmd := exec.Command(a.bootstrap)
	cmd.Env = []string{"HOME=" + t.TempDir(), "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "valine-probe: bad configuration") ||
		!strings.Contains(string(out), "VALINE_API_URL is required") {
		t.Fatalf("want exit 1 naming the missing variables, got %v:\n%s", err, out)
	}
}

// The built bootstrap, run as Lambda runs it (a Runtime API, a scheduled
// event), answers the invocation and prints the metrics and the report.
func TestBootstrapServesAScheduledInvocation(t *testing.T) {
	t.Parallel()
	a := buildForHost(t)
	pw := startProbeWorld(t)
	cs := runColdStart(t, a.bootstrap, pw.env)
	if cs.answer.kind != "response" || cs.answer.body != "null" {
		t.Fatalf("answer %s %q\nstderr:\n%s", cs.answer.kind, cs.answer.body, cs.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(cs.stdout, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		if err := emfspec.Validate([]byte(l)); err != nil {
			t.Fatalf("invalid EMF %v:\n%s", err, l)
		}
	}
	var rep probes.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the report: %v\n%s", err, cs.stdout)
	}
	if rep.Status() != probes.Pass || rep.Expect != probes.Grace {
		t.Errorf("status %s expect %s:\n%s", rep.Status(), rep.Expect, cs.stdout)
	}
	if !strings.Contains(cs.stdout, `"Check":"all","SuccessPercent":100`) {
		t.Errorf("no overall 100%%:\n%s", cs.stdout)
	}
	for _, s := range pw.secrets {
		if strings.Contains(cs.stdout+cs.stderr, s) {
			t.Errorf("the output holds a secret (fingerprint %s)", secret.Fingerprint(s))
		}
	}
	if cs.maxRSSKB <= 0 {
		t.Error("no peak memory measured")
	}
	t.Logf("init %v, invocation %v, peak RSS %d KB, zip %d bytes", cs.init, cs.invoke, cs.maxRSSKB, a.ZipBytes)
}
