package testbed

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/valine/valine-check/internal/profile"
)

// login serves POST LoginPath: {EmailField, PasswordField} -> 200
// {AccessField, RefreshField} (each only if the profile names it) plus the
// profile's cookies; 401 on wrong credentials; 500 when no primary secret is
// configured; 503 SERVER_BUSY when the busy schedule says so.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "Bad Request", "statusCode": http.StatusBadRequest})
		return
	}
	if retryAfter, busy := a.busy.next(); busy {
		writeBusy(w, retryAfter)
		return
	}
	email, _ := body[a.profile.EmailField].(string)
	password, _ := body[a.profile.PasswordField].(string)
	u, ok := a.users.check(email, password)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Invalid credentials", "statusCode": http.StatusUnauthorized})
		return
	}
	set, err := a.secrets.get(r.Context())
	if err != nil || set.primary == "" {
		a.log.Warn("login without a signing secret", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal Server Error", "statusCode": http.StatusInternalServerError})
		return
	}
	a.issue(w, set.primary, u, false)
}

// profileMe serves GET ProfilePath: the access token from the bearer header
// or the access cookie -> 200 {"id", "email"}, else a rejection.
func (a *API) profileMe(w http.ResponseWriter, r *http.Request) {
	var raw string
	if a.profile.AccessTransport == profile.TransportCookie {
		raw = cookieValue(r, a.profile.AccessCookie)
	} else if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		raw = strings.TrimSpace(v)
	}
	v, _ := a.verify(r.Context(), raw, typeAccess, r.URL.Path, r.UserAgent())
	if !v.ok {
		a.reject(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": v.claims.Subject, "email": v.claims.Email})
}

// refresh serves POST RefreshPath: the refresh token from the JSON body's
// RefreshField (transport body) or only from the refresh cookie (transport
// cookie) -> new tokens signed with the primary (with the verifying secret
// under RefreshSignsWithVerifier), else a rejection; 500 under RefreshFails.
func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	if a.Misbehaviours()&RefreshFails != 0 {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal Server Error", "statusCode": http.StatusInternalServerError})
		return
	}
	var raw string
	if a.profile.RefreshTransport == profile.TransportCookie {
		raw = cookieValue(r, a.profile.RefreshCookie)
	} else {
		var body map[string]any
		_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body)
		raw, _ = body[a.profile.RefreshField].(string)
	}
	v, set := a.verify(r.Context(), raw, typeRefresh, r.URL.Path, r.UserAgent())
	if !v.ok {
		a.reject(w)
		return
	}
	u := user{id: v.claims.Subject, email: v.claims.Email}
	secret := set.primary
	if a.Misbehaviours()&RefreshSignsWithVerifier != 0 && v.key != "" {
		secret = v.key
	}
	a.issue(w, secret, u, a.profile.RefreshTransport == profile.TransportCookie)
}

// issue signs a new access and refresh token for u with secret and writes
// them: cookies when the profile names any, and a JSON body that is
// {AccessField, RefreshField} or, for a cookie refresh, {"ok":true, AccessField}.
func (a *API) issue(w http.ResponseWriter, secret string, u user, cookieRefresh bool) {
	access, err := issueToken(secret, u, typeAccess, a.accessTTL)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal Server Error", "statusCode": http.StatusInternalServerError})
		return
	}
	refresh, err := issueToken(secret, u, typeRefresh, a.refreshTTL)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "Internal Server Error", "statusCode": http.StatusInternalServerError})
		return
	}
	p := a.profile
	setCookie(w, p.AccessCookie, access, a.accessTTL)
	setCookie(w, p.RefreshCookie, refresh, a.refreshTTL)
	body := map[string]any{}
	if cookieRefresh {
		body["ok"] = true
	} else if p.RefreshField != "" {
		body[p.RefreshField] = refresh
	}
	if p.AccessField != "" {
		body[p.AccessField] = access
	}
	writeJSON(w, http.StatusOK, body)
}

// verify checks raw against the current secrets and writes the one log line
// for it before returning, so the line is in the log group by the time the
// client sees the response. A failure line names the client's User-Agent, as
// many access logs do: that is how the probe's deliberate rejections are told
// from real ones (probes.DeliberateUserAgent).
func (a *API) verify(ctx context.Context, raw, want, path, userAgent string) (verdict, secretSet) {
	m := a.Misbehaviours()
	if want == typeRefresh && m&RefreshIgnoresSecondary != 0 {
		m |= IgnoreSecondary
	}
	set, err := a.secrets.get(ctx)
	if err != nil {
		a.log.Warn("reading secrets failed", "err", err)
	}
	v := verifyToken(raw, want, set, a.secrets.history(), m)
	if v.ok {
		a.logs.write(ctx, verifiedLine(v.secret, v.claims.Subject, path, userAgent))
	} else {
		a.logs.write(ctx, failedLine(v.reason, path, userAgent))
	}
	return v, set
}

// reject writes the profile's rejection: RejectStatus and, for the runbook
// shape, {"error":"Invalid token","statusCode":<status>}; for the cookie
// shape (a profile named "cookie…" or refreshing by cookie)
// {"error":"Unauthorized"}. A profile's RejectBody that the chosen body does
// not contain is sent verbatim instead, so custom profiles get what they
// expect.
func (a *API) reject(w http.ResponseWriter) {
	p := a.profile
	var body any = map[string]any{"error": "Invalid token", "statusCode": p.RejectStatus}
	if strings.HasPrefix(p.Name, "cookie") || p.RefreshTransport == profile.TransportCookie {
		body = map[string]any{"error": "Unauthorized"}
	}
	out, _ := json.Marshal(body)
	if p.RejectBody != "" && !strings.Contains(string(out), p.RejectBody) {
		out = []byte(p.RejectBody)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(p.RejectStatus)
	_, _ = w.Write(append(out, '\n'))
}

// setCookie sets an HttpOnly, SameSite=Lax cookie on / when name is set.
func setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	if name == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: int(ttl / time.Second),
	})
}

// cookieValue returns the named cookie's value, "" if absent.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
