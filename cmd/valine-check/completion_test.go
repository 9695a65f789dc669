package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletionScripts: each shell's script is printed, names the
// program, and an unknown or missing shell is bad usage.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		shell string
		want  []string
	}{
		{"bash", []string{"complete -o bashdefault -o default -F _valine_check_complete valine-check", "--generate-bash-completion"}},
		{"zsh", []string{"#compdef valine-check", "compdef _valine_check_complete valine-check", "--generate-bash-completion"}},
		{"fish", []string{"complete -c valine-check", "-a 'rotate'", "-l output"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, nil, "", "completion", tc.shell)
			if got.code != exitOK || strings.TrimSpace(got.stdout) == "" || got.stderr != "" {
				t.Fatalf("completion %s:\n%s", tc.shell, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.stdout, w) {
					t.Errorf("completion %s lacks %q", tc.shell, w)
				}
			}
		})
	}
	for _, args := range [][]string{{"completion", "tcsh"}, {"completion"}, {"completion", "bash", "zsh"}} {
		if got := runCLI(t, nil, "", args...); got.code != exitUsage || !strings.Contains(got.stderr, "bash, zsh or fish") {
			t.Errorf("%v: want exit 2 naming the shells:\n%s", args, got)
		}
	}
}

// TestCompletionCandidates: the hidden --generate-bash-completion, which
// the bash and zsh scripts call, lists the commands, a group's
// subcommands, and after a dash the flags; the bash script, driven as bash
// drives it, completes a subcommand's name.
func TestCompletionCandidates(t *testing.T) {
	t.Parallel()
	lines := func(args ...string) []string {
		t.Helper()
		got := runCLI(t, nil, "", append(args, "--generate-bash-completion")...)
		if got.code != exitOK {
			t.Fatalf("%v:\n%s", args, got)
		}
		return strings.Fields(got.stdout)
	}
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	top := lines()
	for _, c := range app.Commands {
		if !slices.Contains(top, c.Name) {
			t.Errorf("top-level candidates %q lack %s", top, c.Name)
		}
	}
	if sub := lines("alarms"); !slices.Contains(sub, "plan") || !slices.Contains(sub, "apply") || !slices.Contains(sub, "status") || slices.Contains(sub, "rotate") {
		t.Errorf("alarms candidates %q: want its subcommands only", sub)
	}
	if flags := lines("status", "--out"); !slices.Contains(flags, "--output") {
		t.Errorf("status --out candidates %q: want --output", flags)
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to drive the script with")
	}
	script := filepath.Join(t.TempDir(), "valine-check.bash")
	if err := os.WriteFile(script, []byte(runCLI(t, nil, "", "completion", "bash").stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words string
		want  string
	}{
		{`valine-check al`, "alarms"},
		{`valine-check alarms pl`, "plan"},
		{`valine-check token ""`, "forge h help inspect which"},
	} {
		drive := `source "$1"; COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _valine_check_complete; echo "${COMPREPLY[*]}"`
		cmd := exec.Command(bash, "--norc", "-c", drive, "bash", script)
		cmd.Env = []string{"PATH=" + filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("driving the bash script with %s: %v\n%s", tc.words, err, out)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("bash completes %s to %q, want %q", tc.words, got, tc.want)
		}
	}
}
