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
		{"AcceptNoExp", testbed.AcceptNoExp, nil,
			func(t *testing.T, w world) string {
				return forgeClaims(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), jwt.MapClaims{"sub": "usr_forged", "typ": "access"})
			},
			false, 401, 200, "secret=primary"},
		{"AcceptNoExp keeps the expiry check", testbed.AcceptNoExp, nil,
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", time.Now().Add(-time.Hour))
			},
			false, 401, 401, `reason="token is expired"`},
		{"AcceptNoExp with SkipSignature", testbed.AcceptNoExp | testbed.SkipSignature, nil,
			func(t *testing.T, w world) string {
				return forgeClaims(t, jwt.SigningMethodHS256, []byte("wrong"), jwt.MapClaims{"sub": "usr_forged", "typ": "access"})
			},
			false, 401, 200, "secret=unverified"},
		{"RefreshIgnoresSecondary", testbed.RefreshIgnoresSecondary,
			func(t *testing.T, w world) { setSecrets(t, w, next, w.InitialSecret()) },
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "refresh", hour())
			},
			true, 200, 401, `reason="signature is invalid"`},
		{"RefreshIgnoresSecondary leaves the profile endpoint", testbed.RefreshIgnoresSecondary,
			func(t *testing.T, w world) { setSecrets(t, w, next, w.InitialSecret()) },
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "access", hour())
			},
			false, 200, 200, "secret=secondary"},
		{"RefreshSignsWithVerifier keeps the status", testbed.RefreshSignsWithVerifier,
			func(t *testing.T, w world) { setSecrets(t, w, next, w.InitialSecret()) },
			func(t *testing.T, w world) string {
				return forge(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), "refresh", hour())
			},
			true, 200, 200, "secret=secondary"},
		{"ServerBusy", testbed.ServerBusy, nil,
			func(t *testing.T, w world) string { return mustLogin(t, w).access },
			false, 200, 503, ""},
		{"ServerBusy on refresh", testbed.ServerBusy, nil,
			func(t *testing.T, w world) string { return mustLogin(t, w).refresh },
			true, 200, 503, ""},
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

func TestRefreshSignsWithVerifier(t *testing.T) {
	t.Parallel()
	const next = "rotated-secret-for-the-verifier"
	w := startWorld(t, testbed.Options{})
	old := mustLogin(t, w)
	setSecrets(t, w, next, w.InitialSecret())
	fresh := mustLogin(t, w)
	tests := []struct {
		name     string
		m        testbed.Misbehaviour
		token    string
		wantKey  string
		wantLine string // the new access token's verification line
	}{
		{"old refresh token, correct", 0, old.refresh, next, "secret=primary"},
		{"old refresh token, misbehaving", testbed.RefreshSignsWithVerifier, old.refresh, w.InitialSecret(), "secret=secondary"},
		{"new refresh token, misbehaving", testbed.RefreshSignsWithVerifier, fresh.refresh, next, "secret=primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.API.SetMisbehaviours(tt.m)
			r, s := refresh(t, w, tt.token)
			if r.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", r.status, r.raw)
			}
			if !signedWith(s.access, tt.wantKey) || !signedWith(s.refresh, tt.wantKey) {
				t.Errorf("new tokens not signed with the %s", map[bool]string{true: "new primary", false: "old secret"}[tt.wantKey == next])
			}
			before := len(logLines(t, w, tt.wantLine))
			if p := getProfile(t, w, s.access); p.status != http.StatusOK {
				t.Errorf("the new access token: %d", p.status)
			}
			if after := len(logLines(t, w, tt.wantLine)); after != before+1 {
				t.Errorf("lines with %q went from %d to %d, want +1", tt.wantLine, before, after)
			}
		})
	}
}

func TestServerBusyAnswersEveryRequest(t *testing.T) {
	t.Parallel()
	for _, backend := range []testbed.Backend{testbed.BackendReference, testbed.BackendValine} {
		t.Run("backend "+string(backend), func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Backend: backend, Busy: &testbed.BusyOptions{}, Misbehaviours: testbed.ServerBusy})
			p := w.Profile
			creds := map[string]string{p.EmailField: w.ProbeEmail, p.PasswordField: w.ProbePassword}
			answers := map[string]response{
				"login":   call(t, http.MethodPost, w.APIURL+p.LoginPath, creds, nil),
				"profile": getProfile(t, w, "any"),
				"refresh": call(t, http.MethodPost, w.APIURL+p.RefreshPath, nil, nil),
				"unknown": call(t, http.MethodGet, w.APIURL+"/nowhere", nil, nil),
			}
			for name, r := range answers {
				if r.status != http.StatusServiceUnavailable || !jsonEqual(t, r.raw, `{"error":"SERVER_BUSY","retryAfter":1}`) || r.header.Get("Retry-After") != "1" {
					t.Errorf("%s: %d %s Retry-After %q, want 503 SERVER_BUSY retryAfter 1", name, r.status, r.raw, r.header.Get("Retry-After"))
				}
			}
			if lines := allLogLines(t, w); len(lines) != 0 {
				t.Errorf("a busy backend logged %d lines, want none: %q", len(lines), lines)
			}
			w.API.SetMisbehaviours(0)
			if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
				t.Errorf("login after clearing ServerBusy: %d", r.status)
			}
		})
	}
}

func TestMisbehaviourNamesTheNewFlags(t *testing.T) {
	t.Parallel()
	m := testbed.AcceptNoExp | testbed.RefreshIgnoresSecondary | testbed.RefreshSignsWithVerifier | testbed.ServerBusy
	if got, want := m.String(), "AcceptNoExp|RefreshIgnoresSecondary|RefreshSignsWithVerifier|ServerBusy"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if testbed.AcceptNoExp != testbed.SkipSignature<<1 {
		t.Error("AcceptNoExp is not the flag after SkipSignature: existing flags were renumbered")
	}
}

func TestOptionsRefuseAnUnknownBackendAndANegativeBusy(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]testbed.Options{
		"unknown backend": {Backend: "serverless"},
		"negative every":  {Busy: &testbed.BusyOptions{Every: -1}},
		"negative retry":  {Backend: testbed.BackendValine, Busy: &testbed.BusyOptions{Every: 2, RetryAfterSeconds: -1}},
	} {
		if w, err := testbed.Start(t.Context(), opts); err == nil {
			w.Close()
			t.Errorf("%s: Start succeeded, want an error", name)
		}
	}
}
