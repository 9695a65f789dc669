package testbed_test

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

func TestLogLinesAreWrittenAndLeakNothing(t *testing.T) {
	t.Parallel()
	for _, preset := range []string{"runbook", "cookie"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Profile: profile.Presets[preset]})
			s := mustLogin(t, w)
			forged := forge(t, jwt.SigningMethodHS256, []byte("attacker"), "access", hour())
			getProfile(t, w, s.access)
			getProfile(t, w, forged)
			getProfile(t, w, "")
			refresh(t, w, s.refresh)
			secondary := "secondary-" + w.InitialSecret()
			if w.Profile.SecondaryVar != "" {
				setSecrets(t, w, w.InitialSecret(), secondary)
				getProfile(t, w, s.access)
			}

			all := logLines(t, w, w.Profile.LogVerificationPattern)
			failed := logLines(t, w, w.Profile.LogFailurePattern)
			if len(all) < 4 {
				t.Fatalf("%d verification lines, want at least 4: %q", len(all), all)
			}
			wantFailed := []string{
				`JWT verification failed reason="signature is invalid" path=` + w.Profile.ProfilePath + ` ua=Go-http-client/1.1`,
				`JWT verification failed reason="missing token" path=` + w.Profile.ProfilePath + ` ua=Go-http-client/1.1`,
			}
			if strings.Join(failed, "\n") != strings.Join(wantFailed, "\n") {
				t.Errorf("failure lines:\n%s\nwant:\n%s", strings.Join(failed, "\n"), strings.Join(wantFailed, "\n"))
			}
			ok := logLines(t, w, "JWT verification ok secret=primary sub=usr_")
			if len(ok) < 2 || !strings.HasSuffix(ok[0], " path="+w.Profile.ProfilePath+" ua=Go-http-client/1.1") || !strings.HasSuffix(ok[1], " path="+w.Profile.RefreshPath+" ua=Go-http-client/1.1") {
				t.Errorf("success lines: %q", ok)
			}
			for _, line := range all {
				if containsAny(line, s.access, s.refresh, forged, w.InitialSecret(), secondary, w.ProbePassword) {
					t.Errorf("log line leaks a token, secret or password: %q", line)
				}
			}
		})
	}
}

// get fetches url without keep-alives and returns the status.
func get(t *testing.T, url string) (int, error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// isConnRefused reports whether err is a refused connection.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
