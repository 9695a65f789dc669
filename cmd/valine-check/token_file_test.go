//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

// TestTokenForgeOutRefusesAllButAFile: --out is a new file or an existing
// regular file; anything else is refused (exit 2, one line, no token
// anywhere), and the file is written 0600 by a rename, whatever was there.
func TestTokenForgeOutRefusesAllButAFile(t *testing.T) {
	t.Parallel()
	forgeKey := "forge-secret-0123456789abcdef0123456789"
	issued, err := probes.Forge(jwt.MapClaims{"sub": "u1", "typ": "access"}, jwt.SigningMethodHS256, secret.NewSecret("issuer-secret-0123456789abcdef012345"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"VALINE_TOKEN=" + issued.Reveal(), "VALINE_SECRET=" + forgeKey}
	known := []string{forgeKey, issued.Reveal()}
	forge := func(t *testing.T, out string) cliRun {
		t.Helper()
		return runCLI(t, env, "", "token", "forge", "--out", out)
	}
	// forged reads the token a run wrote and checks it was signed with the secret.
	forged := func(t *testing.T, path string) {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !probes.SignedWith(secret.NewToken(strings.TrimSpace(string(raw))), secret.NewSecret(forgeKey)) {
			t.Errorf("%s does not hold a token signed with the secret", path)
		}
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a regular file with 0600", path, st.Mode())
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	}

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "elsewhere.jwt")
		link := filepath.Join(dir, "link.jwt")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		notDir := filepath.Join(dir, "plain")
		if err := os.WriteFile(notDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, out, want string }{
			{"symlink", link, "is a symbolic link"},
			{"/dev/stdout", "/dev/stdout", ""}, // a symbolic link on Linux, a device elsewhere
			{"/dev/null", "/dev/null", "is a device or a terminal"},
			{"directory", dir, "is a directory"},
			{"fifo", fifo, "is a FIFO"},
			{"missing directory", filepath.Join(dir, "no-such-dir", "out.jwt"), "its directory cannot be used"},
			{"parent is a file", filepath.Join(notDir, "out.jwt"), ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := forge(t, tc.out)
				wantBadInput(t, got, "--out "+tc.out+": "+tc.want, "valine-check token forge")
				assertNoLeak(t, tc.name, got.stdout+got.stderr, known...)
			})
		}
		if _, err := os.Lstat(target); !os.IsNotExist(err) {
			t.Errorf("the symlink was followed: %s exists (%v)", target, err)
		}
	})

	t.Run("new file", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "new.jwt")
		got := forge(t, out)
		if got.code != exitOK {
			t.Fatalf("want exit 0:\n%s", got)
		}
		assertNoLeak(t, "new file", got.stdout+got.stderr, known...)
		forged(t, out)
	})

	t.Run("existing 0644 file becomes 0600", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "old.jwt")
		if err := os.WriteFile(out, []byte("an older token, longer than the new one will be: "+strings.Repeat("x", 512)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(out, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
		got := forge(t, out)
		if got.code != exitOK {
			t.Fatalf("want exit 0:\n%s", got)
		}
		assertNoLeak(t, "existing file", got.stdout+got.stderr, known...)
		forged(t, out)
	})
}
