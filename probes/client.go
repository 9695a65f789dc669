package probes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// Client speaks one Valine deployment's auth API, shaped by its Profile. It
// keeps no state between calls: a Session carries the tokens, so concurrent
// checks cannot disturb each other (no shared cookie jar).
type Client struct {
	// BaseURL is the API's root, for example https://api.valine.example (no trailing slash needed).
	BaseURL string
	// Profile gives paths, transports and names.
	Profile profile.Profile
	// HTTP is the client used; nil means a client with a 15 s timeout.
	HTTP *http.Client
	// UserAgent identifies the probe in the API's access logs.
	UserAgent string
	// Redact holds the secret values the tool knows (the probe password,
	// the secrets, tokens): an answer quoted in a report never carries one,
	// whatever the API echoes. The values a call sends (the password of a
	// login, the token of a request) are redacted from its answer anyway.
	Redact *secret.Redactor
}

// Session is what a login gives: the access token and, where the deployment
// issues one, the refresh token. It prints only fingerprints.
type Session struct {
	Access  secret.Token
	Refresh secret.Token
}

// Response is the part of an API answer a check reasons about. Body is
// truncated and has anything shaped like a JWT redacted, so it is safe to put
// in a report.
type Response struct {
	Status int
	Body   string
}

// ErrUnreachable wraps every failure to get an HTTP answer at all (refused
// connection, DNS, timeout): the environment failed, not the check.
var ErrUnreachable = errors.New("valine API unreachable")

// StatusError is returned when the API answered with a status the call did
// not expect. It is a finding about the API, not an environment failure.
type StatusError struct {
	Op       string
	Response Response
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.Op, e.Response.Status, e.Response.Body)
}

// UnavailableError is an answer that says nothing about tokens: HTTP 5xx
// (the API or its gateway failed, or is busy) or 429 (rate-limited). A
// check that gets one could not tell, so it is an Error, never a Fail; the
// runner retries it within the check's deadline, waiting RetryAfter when
// the API names one.
type UnavailableError struct {
	// Request is the method and path asked, such as "POST /auth/login".
	Request  string
	Response Response
	// RetryAfter is the wait the API asked for (a Retry-After header, or a
	// retryAfter field in a JSON body, in seconds); 0 when it named none.
	RetryAfter time.Duration
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d %s: the API could not answer", e.Request, e.Response.Status, e.Response.Body)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (it asked to retry after %s)", e.RetryAfter)
	}
	return msg
}

// maxRetryAfter bounds the wait an API can ask for: longer than any
// check's deadline is the same as "not now".
const maxRetryAfter = 5 * time.Minute

// unavailable returns the UnavailableError of a 5xx or 429 answer, or nil.
func (c *Client) unavailable(method, path string, resp *http.Response, raw []byte, sent []string) *UnavailableError {
	if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	return &UnavailableError{Request: method + " " + path, Response: c.safe(resp.StatusCode, raw, sent...), RetryAfter: retryAfter(resp.Header, raw)}
}

// retryAfter reads the wait an answer asks for: the Retry-After header
// (seconds or an HTTP date), else a numeric retryAfter field (seconds) in a
// JSON body, as the Valine backend's {"error":"SERVER_BUSY","retryAfter":3}.
func retryAfter(h http.Header, raw []byte) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			d = time.Duration(secs) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			d = max(0, time.Until(at))
		}
	} else {
		var body struct {
			RetryAfter *float64 `json:"retryAfter"`
		}
		if json.Unmarshal(raw, &body) == nil && body.RetryAfter != nil && *body.RetryAfter >= 0 {
			d = time.Duration(*body.RetryAfter * float64(time.Second))
		}
	}
	return min(d, maxRetryAfter)
}

// Login posts the probe user's credentials and returns the session.
func (c *Client) Login(ctx context.Context, email string, password secret.Secret) (Session, error) {
	body, err := json.Marshal(map[string]string{
		c.Profile.EmailField:    email,
		c.Profile.PasswordField: string(password.Reveal()),
	})
	if err != nil {
		return Session{}, fmt.Errorf("encoding login: %w", err)
	}
	sent := []string{string(password.Reveal())}
	resp, raw, err := c.do(ctx, http.MethodPost, c.Profile.LoginPath, body, nil, sent)
	if err != nil {
		return Session{}, err // names the method and URL already
	}
	if resp.StatusCode != http.StatusOK {
		return Session{}, &StatusError{Op: "login", Response: c.safe(resp.StatusCode, raw, sent...)}
	}
	s, err := c.sessionFrom(resp, raw)
	if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if s.Access.IsEmpty() {
		return Session{}, fmt.Errorf("login: answer carried no access token (looked for JSON field %q and cookie %q)", c.Profile.AccessField, c.Profile.AccessCookie)
	}
	return s, nil
}

// DeliberatePrefix starts the User-Agent of every request the probe
// expects to be refused: "valine-check-deliberate/" and 16 random hex
// digits drawn for each run (see DeliberateLog.Marker). The marker says
// nothing about any secret; a line claiming the prefix without the run's
// own marker is not trusted by the log check (anyone can send it).
const DeliberatePrefix = "valine-check-deliberate/"

// MeDeliberately is Me for a token the probe expects to be rejected: it is
// sent with the marker (DeliberateLog.Marker) as its User-Agent.
func (c *Client) MeDeliberately(ctx context.Context, token secret.Token, marker string) (Response, error) {
	d := *c
	d.UserAgent = marker
	return d.Me(ctx, token)
}

// RefreshDeliberately is Refresh with a refresh token the probe expects to
// be refused, sent with the marker as its User-Agent.
func (c *Client) RefreshDeliberately(ctx context.Context, s Session, marker string) (Session, error) {
	d := *c
	d.UserAgent = marker
	return d.Refresh(ctx, s)
}

// Me calls the profile endpoint (GET /profile/me or /auth/me) with an access
// token, in the profile's transport, and returns the answer whatever its
// status, except that a 5xx or 429 answer is an *UnavailableError: it says
// nothing about the token.
func (c *Client) Me(ctx context.Context, access secret.Token) (Response, error) {
	h := http.Header{}
	switch c.Profile.AccessTransport {
	case profile.TransportCookie:
		h.Add("Cookie", (&http.Cookie{Name: c.Profile.AccessCookie, Value: access.Reveal()}).String())
	default:
		h.Set("Authorization", "Bearer "+access.Reveal())
	}
	resp, raw, err := c.do(ctx, http.MethodGet, c.Profile.ProfilePath, nil, h, []string{access.Reveal()})
	if err != nil {
		return Response{}, err // names the method and URL already
	}
	return c.safe(resp.StatusCode, raw, access.Reveal()), nil
}

// Refresh exchanges the session's refresh token for a new session. The new
// session keeps the old refresh token when the answer carries none (cookie
// deployments that return only {"ok":true,"accessToken":...}).
func (c *Client) Refresh(ctx context.Context, s Session) (Session, error) {
	if s.Refresh.IsEmpty() {
		return Session{}, errors.New("refresh: the login gave no refresh token")
	}
	var body []byte
	h := http.Header{}
	switch c.Profile.RefreshTransport {
	case profile.TransportCookie:
		h.Add("Cookie", (&http.Cookie{Name: c.Profile.RefreshCookie, Value: s.Refresh.Reveal()}).String())
	default:
		var err error
		body, err = json.Marshal(map[string]string{c.Profile.RefreshField: s.Refresh.Reveal()})
		if err != nil {
			return Session{}, fmt.Errorf("encoding refresh: %w", err)
		}
	}
	sent := []string{s.Refresh.Reveal()}
	resp, raw, err := c.do(ctx, http.MethodPost, c.Profile.RefreshPath, body, h, sent)
	if err != nil {
		return Session{}, err // names the method and URL already
	}
	if resp.StatusCode != http.StatusOK {
		return Session{}, &StatusError{Op: "refresh", Response: c.safe(resp.StatusCode, raw, sent...)}
	}
	next, err := c.sessionFrom(resp, raw)
	if err != nil {
		return Session{}, fmt.Errorf("refresh: %w", err)
	}
	if next.Access.IsEmpty() {
		return Session{}, fmt.Errorf("refresh: answer carried no access token (looked for JSON field %q and cookie %q)", c.Profile.AccessField, c.Profile.AccessCookie)
	}
	if next.Refresh.IsEmpty() {
		next.Refresh = s.Refresh
	}
	return next, nil
}

// IsRejection reports whether an answer is the profile's rejection: its status
// and, when the profile names one, its body substring.
func (c *Client) IsRejection(r Response) bool {
	if r.Status != c.Profile.RejectStatus {
		return false
	}
	return c.Profile.RejectBody == "" || strings.Contains(r.Body, c.Profile.RejectBody)
}

// sessionFrom takes tokens from the JSON body first, then from cookies.
func (c *Client) sessionFrom(resp *http.Response, raw []byte) (Session, error) {
	var s Session
	fields := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return Session{}, fmt.Errorf("answer is not a JSON object: %w", err)
		}
	}
	if v, ok := fields[c.Profile.AccessField].(string); ok && c.Profile.AccessField != "" {
		s.Access = secret.NewToken(v)
	}
	if v, ok := fields[c.Profile.RefreshField].(string); ok && c.Profile.RefreshField != "" {
		s.Refresh = secret.NewToken(v)
	}
	for _, ck := range resp.Cookies() {
		switch {
		case ck.Name == c.Profile.AccessCookie && c.Profile.AccessCookie != "" && s.Access.IsEmpty():
			s.Access = secret.NewToken(ck.Value)
		case ck.Name == c.Profile.RefreshCookie && c.Profile.RefreshCookie != "" && s.Refresh.IsEmpty():
			s.Refresh = secret.NewToken(ck.Value)
		}
	}
	return s, nil
}

// maxBody bounds what is read from an answer: auth answers are small.
const maxBody = 64 << 10

func (c *Client) do(ctx context.Context, method, path string, body []byte, h http.Header, sent []string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("building request: %w", err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The URL error repeats the request URL, never headers or body: no token leaks.
		return nil, nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading answer: %w", ErrUnreachable, err)
	}
	if u := c.unavailable(method, path, resp, raw, sent); u != nil {
		return resp, raw, u
	}
	return resp, raw, nil
}

var defaultHTTPClient = &http.Client{Timeout: 15 * time.Second}

// jwtShape matches a compact JWS: three base64url segments.
var jwtShape = regexp.MustCompile(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)

// safe keeps at most 200 bytes of an answer's body, with the values the
// tool knows (c.Redact, and those the call sent) redacted and JWT-shaped
// strings replaced by their fingerprints, so an answer can be quoted in a
// report.
func (c *Client) safe(status int, raw []byte, sent ...string) Response {
	var red *secret.Redactor
	if c != nil {
		red = c.Redact
	}
	red = red.Clone()
	red.Add(sent...)
	return safeResponse(status, []byte(red.Redact(string(raw))))
}

// safeResponse keeps at most 200 bytes of a body, with JWT-shaped strings
// replaced by their fingerprints.
func safeResponse(status int, raw []byte) Response {
	s := jwtShape.ReplaceAllStringFunc(string(raw), func(t string) string { return secret.NewToken(t).String() })
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return Response{Status: status, Body: s}
}

// String shows the session's tokens by fingerprint.
func (s Session) String() string {
	return fmt.Sprintf("session{access: %s, refresh: %s}", s.Access, s.Refresh)
}

// GomegaString keeps Gomega's failure messages from printing the tokens.
func (s Session) GomegaString() string { return s.String() }
