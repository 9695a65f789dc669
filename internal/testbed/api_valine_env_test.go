package testbed_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

func TestValineLogLines(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	ua := "ua-marker-" + uniqueName("probe")
	p := w.Profile
	r := call(t, http.MethodPost, w.APIURL+p.LoginPath, map[string]string{p.EmailField: w.ProbeEmail, p.PasswordField: w.ProbePassword}, http.Header{"User-Agent": {ua}})
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	s := sessionFrom(p, r)
	bad := s.access[:len(s.access)-4] + "AAAA"
	requests := []struct {
		cookie, authorization string
		want                  int
	}{
		{s.access, "", 200},             // INFO cookie
		{"", "Bearer " + s.access, 200}, // INFO header
		{bad, "", 401},                  // INFO cookie, WARN hasCookie
		{"", "Bearer " + bad, 401},      // INFO header, WARN hasAuthHeader
		{"", "", 401},                   // WARN neither
		{"", "Basic dXNlcjpwdw==", 401}, // WARN hasAuthHeader, no token found
	}
	for i, rq := range requests {
		if got := me(t, w, p.ProfilePath, rq.cookie, rq.authorization, ua); got.status != rq.want {
			t.Fatalf("me %d: %d, want %d", i, got.status, rq.want)
		}
	}
	rr := call(t, http.MethodPost, w.APIURL+p.RefreshPath, nil, http.Header{"User-Agent": {ua}}, &http.Cookie{Name: p.RefreshCookie, Value: s.refresh})
	if rr.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", rr.status, rr.raw)
	}
	if r := call(t, http.MethodPost, w.APIURL+p.RefreshPath, nil, http.Header{"User-Agent": {ua}}); r.status != http.StatusUnauthorized {
		t.Fatalf("refresh without a cookie: %d", r.status)
	}
	const invocations = 1 + 6 + 2

	lines := allLogLines(t, w)
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	start := regexp.MustCompile(`^START RequestId: (` + uuid + `) Version: \$LATEST$`)
	end := regexp.MustCompile(`^END RequestId: (` + uuid + `)$`)
	report := regexp.MustCompile(`^REPORT RequestId: (` + uuid + `)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 1024 MB\tMax Memory Used: 80 MB$`)
	event := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(` + uuid + `)\t(INFO|WARN)\t(\{.*\})$`)
	// Each invocation's lines come in order: START, its events, END, REPORT.
	open := ""
	var starts int
	events := map[string]int{}
	for _, line := range lines {
		switch {
		case start.MatchString(line):
			if open != "" {
				t.Errorf("START inside invocation %s", open)
			}
			open = start.FindStringSubmatch(line)[1]
			starts++
		case end.MatchString(line):
			if id := end.FindStringSubmatch(line)[1]; id != open {
				t.Errorf("END of %s, open invocation %q", id, open)
			}
		case report.MatchString(line):
			if id := report.FindStringSubmatch(line)[1]; id != open {
				t.Errorf("REPORT of %s, open invocation %q", id, open)
			}
			open = ""
		case event.MatchString(line):
			m := event.FindStringSubmatch(line)
			if m[1] != open {
				t.Errorf("event of %s, open invocation %q: %s", m[1], open, line)
			}
			events[m[2]+" "+m[3]]++
		default:
			t.Errorf("line in no known format: %q", line)
		}
		if strings.Contains(strings.ToLower(line), "jwt") {
			t.Errorf("line mentions JWT: %q", line)
		}
		if containsAny(line, ua, "Mozilla", "Go-http-client", s.access, s.refresh, w.InitialSecret(), w.ProbePassword, "eyJ") {
			t.Errorf("line leaks a User-Agent, a token, the secret or the password: %q", line)
		}
	}
	if starts != invocations {
		t.Errorf("%d START lines, want %d", starts, invocations)
	}
	want := map[string]int{
		`INFO {"event":"me_token_found","source":"cookie"}`:                    2,
		`INFO {"event":"me_token_found","source":"header"}`:                    2,
		`WARN {"event":"me_no_token","hasAuthHeader":false,"hasCookie":true}`:  1,
		`WARN {"event":"me_no_token","hasAuthHeader":true,"hasCookie":false}`:  2,
		`WARN {"event":"me_no_token","hasAuthHeader":false,"hasCookie":false}`: 1,
	}
	for e, n := range want {
		if events[e] != n {
			t.Errorf("%d lines %s, want %d", events[e], e, n)
		}
	}
	// What the valine profile's log check filters on, by kumo's substring match.
	if n := len(logLines(t, w, p.LogFailurePattern)); n != 4 {
		t.Errorf("%d %s lines, want 4 (one per refused or missing token)", n, p.LogFailurePattern)
	}
	if n := len(logLines(t, w, p.LogVerificationPattern)); n != 4 {
		t.Errorf("%d %s lines, want 4 (one per token presented)", n, p.LogVerificationPattern)
	}
}

func TestValineReadsTheSecretOnlyInANewEnvironment(t *testing.T) {
	t.Parallel()
	const delay = 500 * time.Millisecond
	w := startValine(t, testbed.Options{PropagationDelay: delay})
	const next = "next-jwt-secret-0123456789abcdefghijklmn"
	old, _ := valineLogin(t, w)

	reads := w.AWSFront.Calls("lambda:GetFunctionConfiguration")
	time.Sleep(delay) // past the delay: the next request checks the RevisionId
	for range 3 {
		valineLogin(t, w)
	}
	if got := w.AWSFront.Calls("lambda:GetFunctionConfiguration"); got != reads {
		t.Errorf("%d configuration reads while the RevisionId stayed the same, want none", got-reads)
	}

	if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env["JWT_SECRET"] = next }); err != nil {
		t.Fatalf("EditEnv: %v", err)
	}
	if s, _ := valineLogin(t, w); !signedWith(s.access, w.InitialSecret()) {
		t.Error("the new secret signed before the propagation delay passed")
	}
	eventually(t, 5*time.Second, "logins to sign with the new JWT_SECRET", func() bool {
		s, _ := valineLogin(t, w)
		return signedWith(s.access, next)
	})
	if r := getProfile(t, w, old.access); r.status != http.StatusUnauthorized {
		t.Errorf("a token of the old secret in the new environment: %d, want 401 (one secret)", r.status)
	}
	if r, _ := refresh(t, w, old.refresh); r.status != http.StatusUnauthorized {
		t.Errorf("a refresh token of the old secret: %d, want 401", r.status)
	}
}

func TestValineNeverReadsASecondary(t *testing.T) {
	t.Parallel()
	profile := profile.Presets["valine"]
	profile.SecondaryVar = "JWT_SECRET_PREVIOUS"
	w := startValine(t, testbed.Options{Profile: profile})
	const next = "next-jwt-secret-0123456789abcdefghijklmn"
	old, _ := valineLogin(t, w)
	if err := w.SetSecrets(t.Context(), next, w.InitialSecret()); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	if env, _, err := w.Env(t.Context(), w.Function); err != nil || env[profile.SecondaryVar] != w.InitialSecret() {
		t.Fatalf("the secondary variable is not set (%v)", err)
	}
	if s, _ := valineLogin(t, w); !signedWith(s.access, next) {
		t.Error("login does not sign with the new JWT_SECRET")
	}
	if r := getProfile(t, w, old.access); r.status != http.StatusUnauthorized {
		t.Errorf("a token of the secret now in %s: %d, want 401", profile.SecondaryVar, r.status)
	}
}

func TestValineShortSecretFailsEveryRequest(t *testing.T) {
	t.Parallel()
	short := "short-" + strings.Repeat("s", 25) // 31 characters
	w := startValine(t, testbed.Options{InitialSecret: short})
	p := w.Profile
	token := forgeClaims(t, jwt.SigningMethodHS256, []byte(short), valineToken("usr_any", "access", hour()))
	answers := map[string]response{
		"login":       call(t, http.MethodPost, w.APIURL+p.LoginPath, map[string]string{p.EmailField: w.ProbeEmail, p.PasswordField: w.ProbePassword}, nil),
		"me":          getProfile(t, w, token),
		"/me/profile": me(t, w, "/me/profile", token, "", ""),
		"refresh":     call(t, http.MethodPost, w.APIURL+p.RefreshPath, nil, nil, &http.Cookie{Name: p.RefreshCookie, Value: token}),
	}
	for name, r := range answers {
		if r.status != http.StatusInternalServerError || !jsonEqual(t, r.raw, `{"error":"Internal Server Error"}`) {
			t.Errorf("%s: %d %s, want 500 Internal Server Error", name, r.status, r.raw)
		}
	}
	errs := logLines(t, w, "JWT_SECRET is too short")
	if len(errs) != len(answers) {
		t.Errorf("%d load errors logged, want one per request (%d)", len(errs), len(answers))
	}
	for _, line := range allLogLines(t, w) {
		if strings.Contains(line, short) {
			t.Errorf("a line quotes the secret: %q", line)
		}
	}
	for _, line := range errs {
		if !strings.Contains(line, "\tERROR\t") {
			t.Errorf("load error not at ERROR level: %q", line)
		}
	}

	long := strings.Repeat("k", 32)
	if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env["JWT_SECRET"] = long }); err != nil {
		t.Fatalf("EditEnv: %v", err)
	}
	if s, _ := valineLogin(t, w); !signedWith(s.access, long) {
		t.Error("a 32-character secret in a new environment does not sign")
	}
}

func TestValineKeepsDownRefreshFailsAndLatency(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	s, _ := valineLogin(t, w)

	w.API.SetMisbehaviours(testbed.RefreshFails)
	if r, _ := refresh(t, w, s.refresh); r.status != http.StatusInternalServerError || !jsonEqual(t, r.raw, `{"error":"Internal Server Error"}`) {
		t.Errorf("RefreshFails: %d %s, want 500", r.status, r.raw)
	}
	if r := getProfile(t, w, s.access); r.status != http.StatusOK {
		t.Errorf("RefreshFails broke /auth/me: %d", r.status)
	}

	w.API.SetMisbehaviours(testbed.Down)
	if _, err := get(t, w.APIURL+w.Profile.ProfilePath); !isConnRefused(err) {
		t.Errorf("Down: got %v, want connection refused", err)
	}
	w.API.SetMisbehaviours(0)
	if err := w.API.Err(); err != nil {
		t.Fatalf("coming back: %v", err)
	}
	if r, _ := refresh(t, w, s.refresh); r.status != http.StatusOK {
		t.Errorf("refresh after clearing: %d", r.status)
	}

	w.API.SetLatency(time.Minute)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := client.Get(w.APIURL + w.Profile.ProfilePath); err == nil {
		t.Error("a request under a minute of latency finished within 100ms")
	}
	w.API.SetLatency(0)
}

func TestValineMisbehavioursRelaxItsVerification(t *testing.T) {
	t.Parallel()
	const next = "next-jwt-secret-0123456789abcdefghijklmn"
	type world = *testbed.World
	tests := []struct {
		name          string
		m             testbed.Misbehaviour
		setup         func(t *testing.T, w world)
		token         func(t *testing.T, w world, id string, s session) string
		without, with int
	}{
		{"AcceptOldTokens", testbed.AcceptOldTokens,
			func(t *testing.T, w world) {
				if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env["JWT_SECRET"] = next }); err != nil {
					t.Fatalf("EditEnv: %v", err)
				}
			},
			func(t *testing.T, w world, id string, s session) string { return s.access },
			401, 200},
		{"AcceptAlgNone", testbed.AcceptAlgNone, nil,
			func(t *testing.T, w world, id string, s session) string {
				return forgeClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valineToken(id, "access", hour()))
			},
			401, 200},
		{"AcceptExpired", testbed.AcceptExpired, nil,
			func(t *testing.T, w world, id string, s session) string {
				return forgeClaims(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), valineToken(id, "access", time.Now().Add(-time.Hour)))
			},
			401, 200},
		{"AcceptRefreshAsAccess", testbed.AcceptRefreshAsAccess, nil,
			func(t *testing.T, w world, id string, s session) string { return s.refresh },
			401, 200},
		{"SkipSignature", testbed.SkipSignature, nil,
			func(t *testing.T, w world, id string, s session) string { return s.access[:len(s.access)-4] + "AAAA" },
			401, 200},
		{"SkipSignature still checks exp", testbed.SkipSignature, nil,
			func(t *testing.T, w world, id string, s session) string {
				return forgeClaims(t, jwt.SigningMethodHS256, []byte("wrong"), valineToken(id, "access", time.Now().Add(-time.Hour)))
			},
			401, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := startValine(t, testbed.Options{})
			s, id := valineLogin(t, w)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			token := tt.token(t, w, id, s)
			if got := getProfile(t, w, token).status; got != tt.without {
				t.Errorf("without %v: %d, want %d", tt.m, got, tt.without)
			}
			w.API.SetMisbehaviours(tt.m)
			if got := getProfile(t, w, token).status; got != tt.with {
				t.Errorf("with %v: %d, want %d", tt.m, got, tt.with)
			}
			w.API.SetMisbehaviours(0)
			if got := getProfile(t, w, token).status; got != tt.without {
				t.Errorf("after clearing %v: %d, want %d", tt.m, got, tt.without)
			}
		})
	}
}
