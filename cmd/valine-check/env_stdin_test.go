package main

import (
	"strings"
	"testing"
)

// TestParseEnvLinesNeverShowsALine: an error names the line by number and
// shows none of its text; a key given twice is an error naming the key and
// both lines, not the values.
func TestParseEnvLinesNeverShowsALine(t *testing.T) {
	t.Parallel()
	const bare = "c2VjcmV0LXRoYXQtbXVzdC1ub3QtYmUtcHJpbnRlZC0wMTIzNDU2Nzg5YWI="
	cases := []struct {
		name   string
		input  string
		want   []string
		hidden []string
	}{
		{"a bare base64 secret", "VALINE_PROBE_PASSWORD=pw-one-9f3a\n" + bare + "\n",
			[]string{"line 2", "not one of VALINE_PROBE_PASSWORD, VALINE_OLD_SECRET, VALINE_SECRET"}, []string{strings.TrimSuffix(bare, "="), "pw-one-9f3a"}},
		{"KEY value= typo", "VALINE_SECRET s3cr3t-typed-in-9f3a=\n",
			[]string{"line 1", "not one of"}, []string{"s3cr3t-typed-in-9f3a"}},
		{"an unknown key", "# comment\n\nNOT_A_KEY=value-9f3a\n",
			[]string{"line 3", "not one of"}, []string{"NOT_A_KEY", "value-9f3a"}},
		{"no equals sign", "s3cr3t-pasted-9f3a\n",
			[]string{"line 1 is not KEY=VALUE"}, []string{"s3cr3t-pasted-9f3a"}},
		{"the same key twice", "VALINE_OLD_SECRET=first-value-9f3a\n# the new one\nexport VALINE_OLD_SECRET='second-value-9f3a'\n",
			[]string{"VALINE_OLD_SECRET is given twice, on lines 1 and 3"}, []string{"first-value-9f3a", "second-value-9f3a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEnvLines(strings.NewReader(tc.input))
			if err == nil {
				t.Fatalf("no error; parsed %d keys", len(got))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, h := range tc.hidden {
				if strings.Contains(err.Error(), h) {
					t.Errorf("error %q shows text of the input", err)
				}
			}
		})
	}
	got, err := parseEnvLines(strings.NewReader("export VALINE_SECRET=\"a\"\nVALINE_OLD_SECRET='b'\n# VALINE_SECRET=c\n"))
	if err != nil || got[envSecret] != "a" || got[envOldSecret] != "b" || len(got) != 2 {
		t.Errorf("valid lines: %v, %d keys", err, len(got))
	}
}

// TestEnvStdinErrorsShowNoSecret runs the command as a user would pipe a
// secret into it by mistake.
func TestEnvStdinErrorsShowNoSecret(t *testing.T) {
	t.Parallel()
	const bare = "c2VjcmV0LXRoYXQtbXVzdC1ub3QtYmUtcHJpbnRlZC0wMTIzNDU2Nzg5YWI="
	url, requests := recorder(t)
	env := recorderEnv(t, url)
	for _, tc := range []struct {
		name, stdin, want string
		hidden            []string
	}{
		{"a bare secret", bare + "\n", "--env-stdin: line 1: the key is not one of", []string{strings.TrimSuffix(bare, "=")}},
		{"the same key twice", "VALINE_PROBE_PASSWORD=pw-a-9f3a\nVALINE_PROBE_PASSWORD=pw-b-9f3a\n",
			"--env-stdin: VALINE_PROBE_PASSWORD is given twice, on lines 1 and 2", []string{"pw-a-9f3a", "pw-b-9f3a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runCLI(t, env, tc.stdin, "after-rotation", "--env-stdin")
			wantBadInput(t, got, tc.want, "valine-check after-rotation")
			assertNoLeak(t, tc.name, got.stdout+got.stderr, tc.hidden...)
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests before the bad input was refused", n)
	}
}
