package testbed_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

func TestAuthFlowServesEachPresetsShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		preset        string
		wantCookies   []string
		wantBodyKeys  []string
		wantRefreshOK map[string]any // exact extra keys in the refresh body
		rejectBody    string
	}{
		{"runbook", nil, []string{"accessToken", "refreshToken"}, nil, `{"error":"Invalid token","statusCode":401}`},
		{"cookie", []string{"access_token", "refresh_token"}, []string{"accessToken"}, map[string]any{"ok": true}, `{"error":"Unauthorized"}`},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			t.Parallel()
			w := startWorld(t, testbed.Options{Profile: profile.Presets[tt.preset]})
			r, s := login(t, w, w.ProbeEmail, w.ProbePassword)
			if r.status != http.StatusOK {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			if len(r.body) != len(tt.wantBodyKeys) {
				t.Errorf("login body has keys %v, want %v", keys(r.body), tt.wantBodyKeys)
			}
			for _, k := range tt.wantBodyKeys {
				if v, _ := r.body[k].(string); v == "" {
					t.Errorf("login body lacks %s", k)
				}
			}
			checkCookies(t, r.cookies, tt.wantCookies)
			if !signedWith(s.access, w.InitialSecret()) || !signedWith(s.refresh, w.InitialSecret()) {
				t.Error("tokens not HS256-signed with the primary secret")
			}

			p := getProfile(t, w, s.access)
			if p.status != http.StatusOK || p.body["email"] != w.ProbeEmail || p.body["id"] == "" {
				t.Errorf("profile: %d %s", p.status, p.raw)
			}
			if bad := getProfile(t, w, s.access+"x"); bad.status != http.StatusUnauthorized || strings.TrimSpace(bad.raw) != tt.rejectBody {
				t.Errorf("tampered profile: %d %s, want 401 %s", bad.status, bad.raw, tt.rejectBody)
			}

			rr, s2 := refresh(t, w, s.refresh)
			if rr.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", rr.status, rr.raw)
			}
			for k, v := range tt.wantRefreshOK {
				if rr.body[k] != v {
					t.Errorf("refresh body %s = %v, want %v", k, rr.body[k], v)
				}
			}
			checkCookies(t, rr.cookies, tt.wantCookies)
			if s2.access == "" || s2.access == s.access || s2.refresh == "" {
				t.Error("refresh did not issue new tokens")
			}
			if p := getProfile(t, w, s2.access); p.status != http.StatusOK {
				t.Errorf("profile with refreshed token: %d", p.status)
			}
			if bad, _ := refresh(t, w, s.access); bad.status != http.StatusUnauthorized {
				t.Errorf("refresh with an access token: %d, want 401", bad.status)
			}
			if bad, _ := login(t, w, w.ProbeEmail, "wrong"); bad.status != http.StatusUnauthorized {
				t.Errorf("wrong password: %d, want 401", bad.status)
			}
		})
	}
}

func TestTokensTravelOnlyInTheProfilesTransport(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{Profile: profile.Presets["cookie"]})
	s := mustLogin(t, w)
	p := w.Profile
	bearer := call(t, http.MethodGet, w.APIURL+p.ProfilePath, nil, http.Header{"Authorization": {"Bearer " + s.access}})
	if bearer.status != http.StatusUnauthorized {
		t.Errorf("cookie profile with a bearer header: %d, want 401", bearer.status)
	}
	body := call(t, http.MethodPost, w.APIURL+p.RefreshPath, map[string]string{"refreshToken": s.refresh, "refresh_token": s.refresh}, nil)
	if body.status != http.StatusUnauthorized {
		t.Errorf("cookie refresh with the token in the body: %d, want 401", body.status)
	}
}

func TestRotationPropagatesAfterDelay(t *testing.T) {
	t.Parallel()
	const delay = 200 * time.Millisecond
	w := startWorld(t, testbed.Options{PropagationDelay: delay})
	ctx := t.Context()
	old := mustLogin(t, w)
	const next = "next-secret-0123456789abcdef"

	if err := w.SetSecrets(ctx, next, w.InitialSecret()); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	eventually(t, 5*time.Second, "logins to sign with the new primary", func() bool {
		return signedWith(mustLogin(t, w).access, next)
	})
	if r := getProfile(t, w, old.access); r.status != http.StatusOK {
		t.Errorf("old token during the grace period: %d, want 200", r.status)
	}
	if n := len(logLines(t, w, "JWT verification ok secret=secondary")); n == 0 {
		t.Error("no secret=secondary line for the old token")
	}
	if r := getProfile(t, w, mustLogin(t, w).access); r.status != http.StatusOK {
		t.Errorf("new token: %d", r.status)
	}

	if err := w.SetSecrets(ctx, next, ""); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	eventually(t, 5*time.Second, "the old token to be rejected", func() bool {
		return getProfile(t, w, old.access).status == http.StatusUnauthorized
	})
}

func TestSecretsAreCachedForThePropagationDelay(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{PropagationDelay: time.Hour})
	if err := w.SetSecrets(t.Context(), "unseen-secret", ""); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	if s := mustLogin(t, w); !signedWith(s.access, w.InitialSecret()) {
		t.Error("a rotation took effect before the propagation delay")
	}
}

func TestVerificationOrder(t *testing.T) {
	t.Parallel()
	const primary, secondary = "primary-secret-value", "secondary-secret-value"
	tests := []struct {
		name    string
		key     string
		method  jwt.SigningMethod
		typ     string
		exp     time.Time
		want    int
		wantLog string
	}{
		{"primary", primary, jwt.SigningMethodHS256, "access", hour(), 200, "JWT verification ok secret=primary"},
		{"secondary", secondary, jwt.SigningMethodHS256, "access", hour(), 200, "JWT verification ok secret=secondary"},
		{"unknown key", "other", jwt.SigningMethodHS256, "access", hour(), 401, `reason="signature is invalid"`},
		{"expired", secondary, jwt.SigningMethodHS256, "access", time.Now().Add(-time.Minute), 401, `reason="token is expired"`},
		{"HS512", primary, jwt.SigningMethodHS512, "access", hour(), 401, `reason="unexpected signing method HS512"`},
		{"refresh as access", primary, jwt.SigningMethodHS256, "refresh", hour(), 401, `reason="wrong token type"`},
	}
	w := startWorld(t, testbed.Options{InitialSecret: primary})
	if err := w.SetSecrets(t.Context(), primary, secondary); err != nil {
		t.Fatalf("SetSecrets: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logLines(t, w, tt.wantLog))
			r := getProfile(t, w, forge(t, tt.method, []byte(tt.key), tt.typ, tt.exp))
			if r.status != tt.want {
				t.Errorf("status %d, want %d", r.status, tt.want)
			}
			if after := len(logLines(t, w, tt.wantLog)); after != before+1 {
				t.Errorf("lines with %q went from %d to %d, want +1", tt.wantLog, before, after)
			}
		})
	}
}

func TestNoSecretConfigured(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{})
	s := mustLogin(t, w)
	if err := w.SetSecrets(t.Context(), "", ""); !errors.Is(err, testbed.ErrEmptySecret) {
		t.Fatalf("SetSecrets with an empty primary: got %v, want testbed.ErrEmptySecret", err)
	}
	if err := w.EditEnv(t.Context(), w.Function, func(env map[string]string) { env[w.Profile.SecretVar] = "" }); err != nil {
		t.Fatalf("EditEnv: %v", err)
	}
	if r, _ := login(t, w, w.ProbeEmail, w.ProbePassword); r.status != http.StatusInternalServerError {
		t.Errorf("login without a secret: %d, want 500", r.status)
	}
	if r := getProfile(t, w, s.access); r.status != http.StatusUnauthorized {
		t.Errorf("profile without a secret: %d, want 401", r.status)
	}
	if len(logLines(t, w, `reason="no secret configured"`)) != 1 {
		t.Error("no \"no secret configured\" line")
	}
}

// checkCookies requires exactly the named cookies, HttpOnly, on /, SameSite=Lax.
func checkCookies(t *testing.T, got []*http.Cookie, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d cookies set, want %v", len(got), want)
	}
	for _, name := range want {
		var c *http.Cookie
		for _, g := range got {
			if g.Name == name {
				c = g
			}
		}
		if c == nil || c.Value == "" || !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s = %+v, want HttpOnly, Path=/, SameSite=Lax", name, c)
		}
	}
}

// keys lists a map's keys.
func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
