package testbed

import (
	"slices"
	"testing"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
)

func TestLogPatternMatches(t *testing.T) {
	t.Parallel()
	line := `JWT verification failed reason="signature is invalid" path=/profile/me ua=Go-http-client/1.1`
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"", true},
		{`""`, true},
		{"JWT verification failed", true},
		{`"JWT verification failed"`, true},
		{`"verification JWT"`, false},
		{"failed JWT", true},
		{"jwt", false},
		{"JWT -ok", true},
		{"JWT -failed", false},
		{"?expired ?invalid", true},
		{"?expired ?missing", false},
		{`"reason=\"signature"`, true},
	} {
		p, err := parseLogPattern(tc.pattern)
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		if got := p.match(line); got != tc.want {
			t.Errorf("%q matches: %v, want %v", tc.pattern, got, tc.want)
		}
	}
	for _, bad := range []string{`{ $.level = "error" }`, `[ip, user]`, `%JWT.*failed%`, `"open`, `? x`} {
		if _, err := parseLogPattern(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// The patterns alarms.Desired gives its metric filters, applied as the
// front applies them to the lines the API writes: the secondary-use
// filter counts exactly the verifications the secondary secret passed,
// the failure filter only the failures.
func TestDesiredPatternsMatchTheAPIsLines(t *testing.T) {
	t.Parallel()
	p := profile.Presets["runbook"]
	lines := map[string]string{
		"secondary":               verifiedLine("secondary", "user-1", "/profile/me", "Go-http-client/1.1"),
		"primary":                 verifiedLine("primary", "user-1", "/profile/me", "Go-http-client/1.1"),
		"accepted-old":            verifiedLine("accepted-old", "user-1", "/profile/me", "Go-http-client/1.1"),
		"unverified":              verifiedLine("unverified", "user-1", "/profile/me", "Go-http-client/1.1"),
		"failed":                  failedLine("signature is invalid", "/profile/me", "Go-http-client/1.1"),
		"secondary, by the probe": verifiedLine("secondary", "user-1", "/profile/me", "valine-check-deliberate/0123456789abcdef"),
	}
	for _, tc := range []struct {
		filter, pattern string
		matches         []string
	}{
		{"secondary use", alarms.SecondaryUsePattern(p), []string{"secondary", "secondary, by the probe"}},
		{"failures", p.LogFailurePattern, []string{"failed"}},
	} {
		lp, err := parseLogPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		for name, line := range lines {
			if got, want := lp.match(line), slices.Contains(tc.matches, name); got != want {
				t.Errorf("the %s filter (%s) on the %s line %q: match %v, want %v", tc.filter, tc.pattern, name, line, got, want)
			}
		}
	}
}
