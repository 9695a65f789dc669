package testbed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/testbed"
)

// startWorld starts a World with a discard logger and closes it with the test.
func startWorld(t *testing.T, opts testbed.Options) *testbed.World {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := testbed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// session is what a client holds after login or refresh.
type session struct {
	access, refresh string
	setCookies      []*http.Cookie
}

// response is a decoded API answer.
type response struct {
	status  int
	body    map[string]any
	raw     string
	cookies []*http.Cookie
	header  http.Header
}

// call sends one request to the API without a cookie jar or keep-alives.
func call(t *testing.T, method, url string, body any, header http.Header, cookies ...*http.Cookie) response {
	t.Helper()
	return callVia(t, &http.Transport{DisableKeepAlives: true}, method, url, body, header, cookies...)
}

// callVia is call through the given transport.
func callVia(t *testing.T, transport *http.Transport, method, url string, body any, header http.Header, cookies ...*http.Cookie) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encoding body: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{Transport: transport}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	r := response{status: resp.StatusCode, raw: string(raw), cookies: resp.Cookies(), header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// login logs in with the given credentials.
func login(t *testing.T, w *testbed.World, email, password string) (response, session) {
	t.Helper()
	p := w.Profile
	r := call(t, http.MethodPost, w.APIURL+p.LoginPath, map[string]string{p.EmailField: email, p.PasswordField: password}, nil)
	return r, sessionFrom(p, r)
}

// mustLogin logs the probe user in and requires 200.
func mustLogin(t *testing.T, w *testbed.World) session {
	t.Helper()
	r, s := login(t, w, w.ProbeEmail, w.ProbePassword)
	if r.status != http.StatusOK {
		t.Fatalf("login: status %d, body %s", r.status, r.raw)
	}
	return s
}

// sessionFrom reads the tokens from a login or refresh answer, from the
// body or the cookies as the profile says.
func sessionFrom(p profile.Profile, r response) session {
	s := session{setCookies: r.cookies}
	s.access, _ = r.body[p.AccessField].(string)
	if p.RefreshField != "" {
		s.refresh, _ = r.body[p.RefreshField].(string)
	}
	for _, c := range r.cookies {
		switch c.Name {
		case p.AccessCookie:
			s.access = c.Value
		case p.RefreshCookie:
			s.refresh = c.Value
		}
	}
	return s
}

// getProfile fetches the profile with the access token in the profile's transport.
func getProfile(t *testing.T, w *testbed.World, access string) response {
	t.Helper()
	p := w.Profile
	if p.AccessTransport == profile.TransportCookie {
		return call(t, http.MethodGet, w.APIURL+p.ProfilePath, nil, nil, &http.Cookie{Name: p.AccessCookie, Value: access})
	}
	return call(t, http.MethodGet, w.APIURL+p.ProfilePath, nil, http.Header{"Authorization": {"Bearer " + access}})
}

// refresh posts the refresh token in the profile's transport.
func refresh(t *testing.T, w *testbed.World, token string) (response, session) {
	t.Helper()
	p := w.Profile
	var r response
	if p.RefreshTransport == profile.TransportCookie {
		r = call(t, http.MethodPost, w.APIURL+p.RefreshPath, nil, nil, &http.Cookie{Name: p.RefreshCookie, Value: token})
	} else {
		r = call(t, http.MethodPost, w.APIURL+p.RefreshPath, map[string]string{p.RefreshField: token}, nil)
	}
	return r, sessionFrom(p, r)
}

// forge signs a token with claims for the probe user.
func forge(t *testing.T, method jwt.SigningMethod, key any, typ string, exp time.Time) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "usr_forged", "email": "probe@valine.test", "typ": typ, "iat": time.Now().Unix(), "exp": exp.Unix(), "jti": "forged"}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("forging a token: %v", err)
	}
	return s
}

// uniqueName returns prefix and a random suffix: kumo's storage is global.
func uniqueName(prefix string) string { return prefix + "-" + rand.Text()[:10] }

// hour is an expiry an hour away.
func hour() time.Time { return time.Now().Add(time.Hour) }

// logLines returns the messages in the World's log group containing pattern
// (kumo matches a plain substring).
func logLines(t *testing.T, w *testbed.World, pattern string) []string {
	t.Helper()
	c := cloudwatchlogs.NewFromConfig(w.AWS)
	out, err := c.FilterLogEvents(t.Context(), &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: aws.String(w.LogGroup), FilterPattern: aws.String(pattern),
	})
	if err != nil {
		t.Fatalf("FilterLogEvents: %v", err)
	}
	var lines []string
	for _, e := range out.Events {
		lines = append(lines, aws.ToString(e.Message))
	}
	return lines
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signedWith reports whether token verifies with secret.
func signedWith(token, secret string) bool {
	_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(secret), nil }, jwt.WithValidMethods([]string{"HS256"}))
	return err == nil
}

// containsAny reports whether s contains any of the non-empty needles.
func containsAny(s string, needles ...string) bool {
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return true
		}
	}
	return false
}
