package testbed_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/testbed"
)

func TestEachMisbehaviourChangesWhatItNames(t *testing.T) {
	t.Parallel()
	const next = "rotated-secret-for-misbehaviours"
	type world = *testbed.World
	tests := []struct {
		name  string
		m     testbed.Misbehaviour
		setup func(t *testing.T, w world) // before the token is forged
		token func(t *testing.T, w world) string
		// refresh sends the token to the refresh endpoint, else to the profile endpoint.
		refresh       bool
		without, with int
		wantLogWith   string
	}{
		{"AcceptOldTokens", testbed.AcceptOldTokens,
			func(t *testing.T, w world) { setSecrets(t, w, next, "") },
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", hour())
			},
			false, 401, 200, "secret=accepted-old"},
		{"IgnoreSecondary", testbed.IgnoreSecondary,
			func(t *testing.T, w world) { setSecrets(t, w, next, w.InitialSecret()) },
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", hour())
			},
			false, 200, 401, `reason="signature is invalid"`},
		{"AcceptAlgNone", testbed.AcceptAlgNone, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "access", hour())
			},
			false, 401, 200, "secret=none"},
		{"AcceptAnyHMAC HS384", testbed.AcceptAnyHMAC, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS384, []byte(w.InitialSecret()), "access", hour())
			},
			false, 401, 200, "secret=primary"},
		{"AcceptAnyHMAC HS512", testbed.AcceptAnyHMAC, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS512, []byte(w.InitialSecret()), "access", hour())
			},
			false, 401, 200, "secret=primary"},
		{"RefreshFails", testbed.RefreshFails, nil,
			func(t *testing.T, w world) string { return mustLogin(t, w).refresh },
			true, 200, 500, ""},
		{"AcceptExpired", testbed.AcceptExpired, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", time.Now().Add(-time.Hour))
			},
			false, 401, 200, "secret=primary"},
		{"AcceptRefreshAsAccess", testbed.AcceptRefreshAsAccess, nil,
			func(t *testing.T, w world) string { return mustLogin(t, w).refresh },
			false, 401, 200, "secret=primary"},
		{"SkipSignature empty key", testbed.SkipSignature, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(""), "access", hour())
			},
			false, 401, 200, "secret=unverified"},
		{"SkipSignature tampered", testbed.SkipSignature, nil,
			func(t *testing.T, w world) string {
				return mustLogin(t, w).access[:40] + "x" + mustLogin(t, w).access[41:]
			},
			false, 401, 200, "secret=unverified"},
		{"SkipSignature still checks exp", testbed.SkipSignature, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte("wrong"), "access", time.Now().Add(-time.Hour))
			},
			false, 401, 401, `reason="token is expired"`},
		{"AcceptExpired keeps the signature check", testbed.AcceptExpired, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte("wrong"), "access", hour())
			},
			false, 401, 401, `reason="signature is invalid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{})
			if tt.setup != nil {
				tt.setup(t, w)
			}
			token := tt.token(t, w)
			send := func() int {
				if tt.refresh {
					r, _ := refresh(t, w, token)
					return r.status
				}
				return getProfile(t, w, token).status
			}
			if got := send(); got != tt.without {
				t.Errorf("without %v: status %d, want %d", tt.m, got, tt.without)
			}
			w.API.SetMisbehaviours(tt.m)
			if got := send(); got != tt.with {
				t.Errorf("with %v: status %d, want %d", tt.m, got, tt.with)
			}
			if tt.wantLogWith != "" && len(logLines(t, w, tt.wantLogWith)) == 0 {
				t.Errorf("no log line with %q", tt.wantLogWith)
			}
			w.API.SetMisbehaviours(0)
			if got := send(); got != tt.without {
				t.Errorf("after clearing %v: status %d, want %d", tt.m, got, tt.without)
			}
		})
	}
}

// setSecrets rotates through the Lambda API or fails the test.
func setSecrets(t *testing.T, w *testbed.World, primary, secondary string) {
	t.Helper()
	if err := w.SetSecrets(t.Context(), primary, secondary); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
}

func TestDownRefusesConnectionsAndComesBackOnTheSamePort(t *testing.T) {
	t.Parallel()
	for _, startDown := range []bool{false, true} {
		name := map[bool]string{false: "switched down", true: "started down"}[startDown]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var m testbed.Misbehaviour
			if startDown {
				m = testbed.Down
			}
			w := startWorld(t, testbed.Options{Misbehaviours: m})
			url := w.APIURL + w.Profile.ProfilePath
			if !startDown {
				if _, err := get(t, url); err != nil {
					t.Fatalf("API up: %v", err)
				}
				w.API.SetMisbehaviours(testbed.Down)
			}
			if _, err := get(t, url); !isConnRefused(err) {
				t.Errorf("API down: got %v, want connection refused", err)
			}
			w.API.SetMisbehaviours(0)
			if err := w.API.Err(); err != nil {
				t.Fatalf("coming back: %v", err)
			}
			if w.API.URL() != w.APIURL {
				t.Errorf("URL moved from %s to %s", w.APIURL, w.API.URL())
			}
			status, err := get(t, url)
			if err != nil || status != http.StatusUnauthorized {
				t.Errorf("API back: %d, %v; want 401 without a token", status, err)
			}
			if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
				t.Errorf("login after coming back: %d", r.status)
			}
		})
	}
}

func TestLatencyIsInjected(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	w.API.SetLatency(time.Minute)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := client.Get(w.APIURL + w.Profile.ProfilePath); err == nil {
		t.Error("a request under a minute of latency finished within 100ms")
	}
	w.API.SetLatency(0)
	if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
		t.Errorf("after removing latency: %d", r.status)
	}
}
