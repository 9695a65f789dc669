package testbed_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

func TestValineLoginShapeAndCookies(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	if w.Profile != profile.Presets["valine"] {
		t.Errorf("profile %q, want the valine preset by default", w.Profile.Name)
	}
	r, s := login(t, w, w.ProbeEmail, w.ProbePassword)
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if got := keys(r.body); len(got) != 3 || r.body["accessToken"] == nil || r.body["user"] == nil || r.body["csrfToken"] == nil {
		t.Errorf("login body keys %v, want exactly accessToken, user, csrfToken", got)
	}
	u, _ := r.body["user"].(map[string]any)
	if id, _ := u["id"].(string); id == "" || u["email"] != w.ProbeEmail || len(u) != 2 {
		t.Errorf("login user %v, want {id, email}", u)
	}
	tests := []struct {
		name     string
		maxAge   int
		httpOnly bool
	}{
		{"access_token", 24 * 3600, true},
		{"refresh_token", 7 * 24 * 3600, true},
		{"XSRF-TOKEN", 900, false},
	}
	if len(r.cookies) != len(tests) {
		t.Errorf("cookies %v, want access_token, refresh_token, XSRF-TOKEN", cookieNames(r.cookies))
	}
	for _, tt := range tests {
		c := cookieNamed(r.cookies, tt.name)
		if c == nil || c.Value == "" || c.HttpOnly != tt.httpOnly || !c.Secure || c.SameSite != http.SameSiteNoneMode || c.Path != "/" || c.MaxAge != tt.maxAge {
			t.Errorf("cookie %s = %+v, want HttpOnly=%v, Secure, SameSite=None, Path=/, Max-Age=%d", tt.name, c, tt.httpOnly, tt.maxAge)
		}
	}
	if c := cookieNamed(r.cookies, "XSRF-TOKEN"); c != nil && c.Value != r.body["csrfToken"] {
		t.Error("XSRF-TOKEN cookie differs from the body's csrfToken")
	}
	if s.access != r.body["accessToken"] {
		t.Error("access_token cookie differs from the body's accessToken")
	}
	for _, tc := range []struct {
		token, typ string
		ttl        time.Duration
	}{{s.access, "access", 24 * time.Hour}, {s.refresh, "refresh", 7 * 24 * time.Hour}} {
		if h := segment(t, tc.token, 0); h["alg"] != "HS256" {
			t.Errorf("%s token header %v, want HS256", tc.typ, h)
		}
		c := segment(t, tc.token, 1)
		got := keys(c)
		slices.Sort(got)
		if !slices.Equal(got, []string{"exp", "iat", "sub", "type"}) || c["type"] != tc.typ || c["sub"] != u["id"] {
			t.Errorf("%s token claims %v, want exactly {sub, type:%q, iat, exp}", tc.typ, c, tc.typ)
		}
		if exp, iat := c["exp"].(float64), c["iat"].(float64); time.Duration(exp-iat)*time.Second != tc.ttl {
			t.Errorf("%s token lives %v, want %v", tc.typ, time.Duration(exp-iat)*time.Second, tc.ttl)
		}
		if !signedWith(tc.token, w.InitialSecret()) {
			t.Errorf("%s token not HS256-signed with JWT_SECRET", tc.typ)
		}
	}
	bad, _ := login(t, w, w.ProbeEmail, "wrong")
	if bad.status != http.StatusUnauthorized || !jsonEqual(t, bad.raw, `{"error":"Invalid credentials"}`) || len(bad.cookies) != 0 {
		t.Errorf("wrong password: %d %s, cookies %v; want 401 Invalid credentials and no cookies", bad.status, bad.raw, cookieNames(bad.cookies))
	}
}

func TestValineTTLsCanBeOverridden(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{AccessTTL: time.Minute, RefreshTTL: time.Hour})
	s, _ := valineLogin(t, w)
	for _, tc := range []struct {
		token string
		want  float64
	}{{s.access, 60}, {s.refresh, 3600}} {
		c := segment(t, tc.token, 1)
		if got := c["exp"].(float64) - c["iat"].(float64); got != tc.want {
			t.Errorf("%s token lives %vs, want %vs", c["type"], got, tc.want)
		}
	}
}

func TestValineLoginIsRateLimitedPerIPAndEnvironment(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	// Failed attempts count: the limiter runs before the password check.
	for i := range 100 {
		if r, _ := login(t, w, w.ProbeEmail, "wrong"); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s, want 401", i+1, r.status, r.raw)
		}
	}
	r, _ := login(t, w, w.ProbeEmail, w.ProbePassword)
	if r.status != http.StatusTooManyRequests || !jsonEqual(t, r.raw, `{"error":"Too many login attempts"}`) {
		t.Fatalf("attempt 101: %d %s, want 429 Too many login attempts", r.status, r.raw)
	}

	p := w.Profile
	other := callVia(t, fromLocalIP("127.0.0.2"), http.MethodPost, w.APIURL+p.LoginPath,
		map[string]string{p.EmailField: w.ProbeEmail, p.PasswordField: w.ProbePassword}, nil)
	if other.status != http.StatusOK {
		t.Errorf("login from another source IP: %d %s, want 200", other.status, other.raw)
	}

	// A configuration change starts a new environment, which forgets the count.
	if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env["LOG_LEVEL"] = "debug" }); err != nil {
		t.Fatalf("EditEnv: %v", err)
	}
	if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusOK {
		t.Errorf("login in a new environment: %d %s, want 200", r.status, r.raw)
	}
}

// loginStatuses logs the probe user in n times and returns the answers.
func loginStatuses(t *testing.T, w *testbed.World, n int) []response {
	t.Helper()
	var rs []response
	for range n {
		r, _ := login(t, w, w.ProbeEmail, w.ProbePassword)
		rs = append(rs, r)
	}
	return rs
}

// checkBusy requires the answers' statuses to be 200, except 503 SERVER_BUSY
// with retryAfter at the 1-based positions in busyAt.
func checkBusy(t *testing.T, rs []response, retryAfter int, busyAt ...int) {
	t.Helper()
	for i, r := range rs {
		if !slices.Contains(busyAt, i+1) {
			if r.status != http.StatusOK {
				t.Errorf("login %d: %d %s, want 200", i+1, r.status, r.raw)
			}
			continue
		}
		want := `{"error":"SERVER_BUSY","retryAfter":` + strconv.Itoa(retryAfter) + `}`
		if r.status != http.StatusServiceUnavailable || !jsonEqual(t, r.raw, want) || r.header.Get("Retry-After") != strconv.Itoa(retryAfter) || len(r.cookies) != 0 {
			t.Errorf("login %d: %d %s Retry-After %q cookies %v; want 503 %s, Retry-After %d, no cookies",
				i+1, r.status, r.raw, r.header.Get("Retry-After"), cookieNames(r.cookies), want, retryAfter)
		}
	}
}

func TestValineLoginIsBusyEveryNthAttempt(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{Busy: &testbed.BusyOptions{Every: 3, RetryAfterSeconds: 2}})
	checkBusy(t, loginStatuses(t, w, 7), 2, 3, 6)

	w.API.SetBusy(2, 0) // restarts the count; 0 means the real backend's 3
	checkBusy(t, loginStatuses(t, w, 4), 3, 2, 4)

	w.API.SetBusy(0, 5)
	checkBusy(t, loginStatuses(t, w, 5), 0)
}

func TestValineBusyDefaultsToEvery15thLogin(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{Backend: testbed.BackendValine})
	checkBusy(t, loginStatuses(t, w, 16), 3, 15)
}

func TestReferenceBackendIsBusyOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	checkBusy(t, loginStatuses(t, w, 16), 0)
	w.API.SetBusy(2, 1)
	checkBusy(t, loginStatuses(t, w, 4), 1, 2, 4)

	busy := startWorld(t, testbed.Options{Busy: &testbed.BusyOptions{Every: 3}})
	checkBusy(t, loginStatuses(t, busy, 3), 3, 3)
}

func TestValineAcceptsEveryHMACSignedWithTheSecret(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	_, id := valineLogin(t, w)
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		t.Run(m.Alg(), func(t *testing.T) {
			token := forgeClaims(t, m, []byte(w.InitialSecret()), valineToken(id, "access", hour()))
			r := getProfile(t, w, token)
			u, _ := r.body["user"].(map[string]any)
			if r.status != http.StatusOK || u["id"] != id || u["email"] != w.ProbeEmail {
				t.Errorf("%s: %d %s, want 200 {user:{id, email}}", m.Alg(), r.status, r.raw)
			}
			wrong := forgeClaims(t, m, []byte("another-secret-of-at-least-32-characters"), valineToken(id, "access", hour()))
			if r := getProfile(t, w, wrong); r.status != http.StatusUnauthorized {
				t.Errorf("%s with another secret: %d, want 401", m.Alg(), r.status)
			}
		})
	}
}

func TestValineRefusesAlgNone(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	_, id := valineLogin(t, w)
	token := forgeClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valineToken(id, "access", hour()))
	if r := getProfile(t, w, token); r.status != http.StatusUnauthorized || !jsonEqual(t, r.raw, `{"error":"Unauthorized"}`) {
		t.Errorf("alg=none: %d %s, want 401 Unauthorized", r.status, r.raw)
	}
}

func TestValineAcceptsATokenWithoutExp(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	_, id := valineLogin(t, w)
	token := forgeClaims(t, jwt.SigningMethodHS256, []byte(w.InitialSecret()), jwt.MapClaims{"sub": id, "type": "access"})
	if r := getProfile(t, w, token); r.status != http.StatusOK {
		t.Errorf("no exp: %d %s, want 200", r.status, r.raw)
	}
}

func TestValineRefusesBadAccessTokens(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	s, id := valineLogin(t, w)
	secret := []byte(w.InitialSecret())
	payload := segment(t, s.access, 1)
	payload["exp"] = time.Now().Add(1000 * time.Hour).Unix()
	tests := []struct {
		name  string
		token string
	}{
		{"expired", forgeClaims(t, jwt.SigningMethodHS256, secret, valineToken(id, "access", time.Now().Add(-time.Minute)))},
		{"not yet valid", forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": id, "type": "access", "nbf": hour().Unix()})},
		{"wrong secret", forgeClaims(t, jwt.SigningMethodHS256, []byte("not-the-secret-but-just-as-long-0123"), valineToken(id, "access", hour()))},
		{"tampered payload", withPayload(t, s.access, payload)},
		{"tampered signature", s.access + "x"},
		{"malformed", "not-a-token"},
		{"three garbage parts", "abc.def.ghi"},
		{"refresh token as access", s.refresh},
		{"no type", forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": id, "exp": hour().Unix()})},
		{"unknown user", forgeClaims(t, jwt.SigningMethodHS256, secret, valineToken("usr_nobody", "access", hour()))},
		{"no subject", forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"type": "access", "exp": hour().Unix()})},
	}
	if r := getProfile(t, w, s.access); r.status != http.StatusOK {
		t.Fatalf("the login's own token: %d %s", r.status, r.raw)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := getProfile(t, w, tt.token); r.status != http.StatusUnauthorized || !jsonEqual(t, r.raw, `{"error":"Unauthorized"}`) {
				t.Errorf("%d %s, want 401 Unauthorized", r.status, r.raw)
			}
		})
	}
}

func TestValineAcceptsALegacyUserIDClaim(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	_, id := valineLogin(t, w)
	secret := []byte(w.InitialSecret())
	legacy := forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"userId": id, "type": "access", "exp": hour().Unix()})
	r := getProfile(t, w, legacy)
	if u, _ := r.body["user"].(map[string]any); r.status != http.StatusOK || u["id"] != id {
		t.Errorf("legacy userId: %d %s, want 200 for %s", r.status, r.raw, id)
	}
	untyped := forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"userId": id, "exp": hour().Unix()})
	if r := getProfile(t, w, untyped); r.status != http.StatusUnauthorized {
		t.Errorf("legacy userId without type: %d, want 401", r.status)
	}
}

func TestValineMeTakesTheCookieFirstThenTheBearerHeader(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	s, id := valineLogin(t, w)
	bad := s.access[:len(s.access)-4] + "AAAA"
	tests := []struct {
		name, path, cookie, authorization string
		want                              int
	}{
		{"cookie", "/auth/me", s.access, "", 200},
		{"bearer", "/auth/me", "", "Bearer " + s.access, 200},
		{"good cookie wins over a bad bearer", "/auth/me", s.access, "Bearer " + bad, 200},
		{"bad cookie wins over a good bearer", "/auth/me", bad, "Bearer " + s.access, 401},
		{"not a bearer header", "/auth/me", "", "Token " + s.access, 401},
		{"nothing", "/auth/me", "", "", 401},
		{"/me/profile by cookie", "/me/profile", s.access, "", 200},
		{"/me/profile by bearer", "/me/profile", "", "Bearer " + s.access, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := me(t, w, tt.path, tt.cookie, tt.authorization, "")
			if r.status != tt.want {
				t.Fatalf("%d %s, want %d", r.status, r.raw, tt.want)
			}
			want := `{"error":"Unauthorized"}`
			if tt.want == http.StatusOK {
				want = `{"user":{"id":"` + id + `","email":"` + w.ProbeEmail + `"}}`
			}
			if !jsonEqual(t, r.raw, want) {
				t.Errorf("body %s, want %s", r.raw, want)
			}
		})
	}
}

func TestValineRefreshTakesOnlyTheCookie(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	s, id := valineLogin(t, w)
	secret := []byte(w.InitialSecret())
	p := w.Profile
	post := func(t *testing.T, body any, h http.Header, cookie string) response {
		t.Helper()
		var cs []*http.Cookie
		if cookie != "" {
			cs = append(cs, &http.Cookie{Name: p.RefreshCookie, Value: cookie})
		}
		return call(t, http.MethodPost, w.APIURL+p.RefreshPath, body, h, cs...)
	}
	const (
		missing   = "Missing refresh token"
		invalid   = "Invalid refresh token"
		wrongType = "Invalid token type - expected refresh token"
		noUser    = "Invalid user"
	)
	tests := []struct {
		name   string
		body   any
		header http.Header
		cookie string
		want   string
	}{
		{"JSON body", map[string]string{"refreshToken": s.refresh, "refresh_token": s.refresh}, nil, "", missing},
		{"bearer header", nil, http.Header{"Authorization": {"Bearer " + s.refresh}}, "", missing},
		{"malformed", nil, nil, "not-a-token", invalid},
		{"tampered", nil, nil, s.refresh[:len(s.refresh)-4] + "AAAA", invalid},
		{"expired", nil, nil, forgeClaims(t, jwt.SigningMethodHS256, secret, valineToken(id, "refresh", time.Now().Add(-time.Minute))), invalid},
		{"wrong secret", nil, nil, forgeClaims(t, jwt.SigningMethodHS256, []byte("not-the-secret-but-just-as-long-0123"), valineToken(id, "refresh", hour())), invalid},
		{"access token", nil, nil, s.access, wrongType},
		{"no type", nil, nil, forgeClaims(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": id, "exp": hour().Unix()}), wrongType},
		{"unknown user", nil, nil, forgeClaims(t, jwt.SigningMethodHS256, secret, valineToken("usr_nobody", "refresh", hour())), noUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, tt.body, tt.header, tt.cookie)
			if want := `{"error":"` + tt.want + `"}`; r.status != http.StatusUnauthorized || !jsonEqual(t, r.raw, want) || len(r.cookies) != 0 {
				t.Errorf("%d %s, cookies %v; want 401 %s and no cookie", r.status, r.raw, cookieNames(r.cookies), want)
			}
		})
	}

	r := post(t, nil, nil, s.refresh)
	if r.status != http.StatusOK || len(r.body) != 2 || r.body["ok"] != true {
		t.Fatalf("refresh by cookie: %d %s, want 200 {ok:true, accessToken}", r.status, r.raw)
	}
	access, _ := r.body["accessToken"].(string)
	c := cookieNamed(r.cookies, p.AccessCookie)
	if c == nil || c.Value != access || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteNoneMode || c.MaxAge != 24*3600 {
		t.Errorf("refresh's access_token cookie %+v, want the body's token, HttpOnly, Secure, SameSite=None, a day", c)
	}
	if len(r.cookies) != 1 {
		t.Errorf("refresh set cookies %v, want only access_token (the refresh token is not rotated)", cookieNames(r.cookies))
	}
	if got := getProfile(t, w, access); got.status != http.StatusOK {
		t.Errorf("the refreshed token on /auth/me: %d", got.status)
	}
}

func TestValineRefreshNeverRotatesTheRefreshToken(t *testing.T) {
	t.Parallel()
	w := startValine(t, testbed.Options{})
	// Login and refresh within one second give the same claims, hence the
	// same bytes; start at a second's edge so that they normally do.
	for attempt := 1; ; attempt++ {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		s, _ := valineLogin(t, w)
		r, next := refresh(t, w, s.refresh)
		if r.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.status, r.raw)
		}
		if cookieNamed(r.cookies, w.Profile.RefreshCookie) != nil || next.refresh != "" {
			t.Error("refresh set a new refresh token")
		}
		again, _ := refresh(t, w, s.refresh)
		if again.status != http.StatusOK {
			t.Errorf("the same refresh token again: %d, want 200 (it is not rotated)", again.status)
		}
		if segment(t, s.access, 1)["iat"] == segment(t, next.access, 1)["iat"] {
			if next.access != s.access {
				t.Error("login and refresh in the same second gave different access tokens")
			}
			return
		}
		if attempt == 3 {
			t.Fatal("login and refresh never fell in the same second")
		}
	}
}
