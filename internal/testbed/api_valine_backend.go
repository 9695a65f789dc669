package testbed

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// valineProfileAlias is the real backend's second route to the /auth/me
// handler.
const valineProfileAlias = "/me/profile"

// valineCSRFMaxAge is the XSRF-TOKEN cookie's lifetime.
const valineCSRFMaxAge = 900 * time.Second

// valineHandler serves one route of the valine backend in an environment
// whose module loaded.
type valineHandler func(c *valineCall, env *valineEnv, r *http.Request)

// serveValine routes a request the way API Gateway does for the real stack
// (an unknown route or method is API Gateway's own 404, which invokes no
// function and logs nothing) and runs the handler in the current execution
// environment; an environment whose module threw at load answers 500.
func (a *API) serveValine(w http.ResponseWriter, r *http.Request) {
	p := a.profile
	var h valineHandler
	switch {
	case r.Method == http.MethodPost && r.URL.Path == p.LoginPath:
		h = a.valineLogin
	case r.Method == http.MethodGet && (r.URL.Path == p.ProfilePath || r.URL.Path == valineProfileAlias):
		h = a.valineMe
	case r.Method == http.MethodPost && r.URL.Path == p.RefreshPath:
		h = a.valineRefresh
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	env, err := a.valine.current(r.Context())
	if err == nil && a.runtime != nil {
		env = a.valineStoreEnv(r.Context(), env)
	}
	c := newValineCall(w, r, a.logs)
	switch {
	case err != nil:
		a.log.Warn("no valine environment could start", "err", err)
		c.reply(http.StatusInternalServerError, valineInternalError())
	case env.broken:
		// Lambda retries a failed init on every invocation, and Node prints
		// the exception before the invocation's START line. The message
		// names the variable, never its value.
		msg := a.valine.secretVar + " is too short: it must be at least 32 characters"
		if env.failure != "" {
			msg = env.failure
		}
		c.lines = append([]string{lambdaLine("undefined", "ERROR", map[string]any{
			"errorType":    "Error",
			"errorMessage": msg,
		})}, c.lines...)
		c.reply(http.StatusInternalServerError, valineInternalError())
	default:
		h(c, env, r)
	}
}

// valineLogin serves POST /auth/login {email, password}: rate limit, then
// the busy schedule (the bcrypt step), then the credentials.
func (a *API) valineLogin(c *valineCall, env *valineEnv, r *http.Request) {
	p := a.profile
	if !env.limiter.allow(sourceIP(r), time.Now()) {
		c.event("WARN", map[string]any{"event": "login_rate_limited"})
		c.reply(http.StatusTooManyRequests, map[string]any{"error": "Too many login attempts"})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(c.w, r.Body, 1<<16)).Decode(&body); err != nil {
		c.reply(http.StatusBadRequest, map[string]any{"error": "Invalid JSON body"})
		return
	}
	email, _ := body[p.EmailField].(string)
	password, _ := body[p.PasswordField].(string)
	if email == "" || password == "" {
		c.reply(http.StatusBadRequest, map[string]any{"error": "Email and password are required"})
		return
	}
	if retryAfter, busy := a.busy.next(); busy {
		c.event("WARN", map[string]any{"event": "login_busy", "retryAfter": retryAfter})
		writeBusyHeader(c.w, retryAfter)
		c.reply(http.StatusServiceUnavailable, busyBody(retryAfter))
		return
	}
	u, ok := a.users.check(email, password)
	if !ok {
		c.event("WARN", map[string]any{"event": "login_failed"})
		c.reply(http.StatusUnauthorized, map[string]any{"error": "Invalid credentials"})
		return
	}
	access, err := signValine(env.secret, u.id, typeAccess, a.accessTTL)
	if err != nil {
		c.reply(http.StatusInternalServerError, valineInternalError())
		return
	}
	refresh, err := signValine(env.secret, u.id, typeRefresh, a.refreshTTL)
	if err != nil {
		c.reply(http.StatusInternalServerError, valineInternalError())
		return
	}
	csrf := randomHex(32)
	setValineCookie(c.w, p.AccessCookie, access, a.accessTTL, true)
	setValineCookie(c.w, p.RefreshCookie, refresh, a.refreshTTL, true)
	setValineCookie(c.w, "XSRF-TOKEN", csrf, valineCSRFMaxAge, false)
	c.event("INFO", map[string]any{"event": "login_success", "userId": plain(u.id)})
	c.reply(http.StatusOK, map[string]any{
		a.valineAccessField(): access,
		"user":                map[string]any{"id": u.id, "email": u.email},
		"csrfToken":           csrf,
	})
}

// valineMe serves GET /auth/me and /me/profile: the access cookie first,
// else a bearer header. Where a token was found is logged (INFO
// me_token_found); a refused token logs the same WARN me_no_token as a
// missing one, and nothing says why.
func (a *API) valineMe(c *valineCall, env *valineEnv, r *http.Request) {
	cookie := cookieValue(r, a.profile.AccessCookie)
	authz := r.Header.Get("Authorization")
	token, source := cookie, "cookie"
	if token == "" {
		if v, ok := strings.CutPrefix(authz, "Bearer "); ok {
			token, source = strings.TrimSpace(v), "header"
		}
	}
	if token != "" {
		c.event("INFO", map[string]any{"event": "me_token_found", "source": source})
	}
	m := a.Misbehaviours()
	if claims, ok := verifyValine(token, a.valineKeys(env, m), m); ok {
		isAccess := claims.Type == typeAccess || m&AcceptRefreshAsAccess != 0 && claims.Type == typeRefresh
		if u, found := a.users.byID(claims.userID()); isAccess && found {
			c.reply(http.StatusOK, map[string]any{"user": map[string]any{"id": u.id, "email": u.email}})
			return
		}
	}
	c.event("WARN", map[string]any{"event": "me_no_token", "hasAuthHeader": authz != "", "hasCookie": cookie != ""})
	c.reply(http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
}

// valineRefresh serves POST /auth/refresh: the refresh cookie only, each
// refusal with its own message; success issues a new access token (cookie
// and body) and leaves the refresh token as it is.
func (a *API) valineRefresh(c *valineCall, env *valineEnv, r *http.Request) {
	m := a.Misbehaviours()
	refuse := func(event, msg string) {
		c.event("WARN", map[string]any{"event": event})
		c.reply(http.StatusUnauthorized, map[string]any{"error": msg})
	}
	if m&RefreshFails != 0 {
		c.event("ERROR", map[string]any{"event": "refresh_error"})
		c.reply(http.StatusInternalServerError, valineInternalError())
		return
	}
	raw := cookieValue(r, a.profile.RefreshCookie)
	if raw == "" {
		refuse("refresh_missing_token", "Missing refresh token")
		return
	}
	claims, ok := verifyValine(raw, a.valineKeys(env, m), m)
	switch {
	case !ok:
		refuse("refresh_invalid_token", "Invalid refresh token")
		return
	case claims.Type != typeRefresh:
		refuse("refresh_wrong_type", "Invalid token type - expected refresh token")
		return
	}
	u, found := a.users.byID(claims.userID())
	if !found {
		refuse("refresh_invalid_user", "Invalid user")
		return
	}
	access, err := signValine(env.secret, u.id, typeAccess, a.accessTTL)
	if err != nil {
		c.reply(http.StatusInternalServerError, valineInternalError())
		return
	}
	setValineCookie(c.w, a.profile.AccessCookie, access, a.accessTTL, true)
	c.event("INFO", map[string]any{"event": "refresh_success", "userId": plain(u.id)})
	c.reply(http.StatusOK, map[string]any{"ok": true, a.valineAccessField(): access})
}

// valineKeys are the secrets a token may be signed with: the environment's
// own, and under AcceptOldTokens every one an earlier environment loaded.
func (a *API) valineKeys(env *valineEnv, m Misbehaviour) []string {
	keys := []string{env.secret}
	if m&AcceptOldTokens != 0 {
		history := a.valine.history
		if a.runtime != nil {
			history = a.runtime.history
		}
		for _, k := range history() {
			if k != env.secret {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// valineAccessField is the body field of the access token.
func (a *API) valineAccessField() string {
	if a.profile.AccessField != "" {
		return a.profile.AccessField
	}
	return "accessToken"
}

// valineInternalError is the body of a 500.
func valineInternalError() map[string]any { return map[string]any{"error": "Internal Server Error"} }

// setValineCookie sets a production cookie of the real backend: Secure,
// SameSite=None, on /, HttpOnly unless it is the CSRF cookie, which the
// front end must read. A nameless cookie (a profile without one) is not set.
func setValineCookie(w http.ResponseWriter, name, value string, ttl time.Duration, httpOnly bool) {
	if name == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: httpOnly, Secure: true,
		SameSite: http.SameSiteNoneMode, MaxAge: int(ttl / time.Second),
	})
}

// byID returns the account with the user id.
func (s *userStore) byID(id string) (user, bool) {
	if id == "" {
		return user{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.id == id {
			return u, true
		}
	}
	return user{}, false
}
