package testbed

import "testing"

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
