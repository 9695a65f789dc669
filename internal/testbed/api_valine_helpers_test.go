package testbed_test

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/golang-jwt/jwt/v5"

	"github.com/valine/valine-check/internal/testbed"
)

// startValine starts a World with the valine backend. Busy is off unless
// opts.Busy says otherwise, so that a test counting logins is not surprised
// by the default schedule (every 15th); TestValineBusyDefaultsToEvery15thLogin
// covers the default.
func startValine(t *testing.T, opts testbed.Options) *testbed.World {
	t.Helper()
	opts.Backend = testbed.BackendValine
	if opts.Busy == nil {
		opts.Busy = &testbed.BusyOptions{}
	}
	return startWorld(t, opts)
}

// valineLogin logs the probe user in, requires 200 and returns the session
// and the user id the answer names.
func valineLogin(t *testing.T, w *testbed.World) (session, string) {
	t.Helper()
	r, s := login(t, w, w.ProbeEmail, w.ProbePassword)
	if r.status != http.StatusOK {
		t.Fatalf("login: status %d, body %s", r.status, r.raw)
	}
	u, _ := r.body["user"].(map[string]any)
	id, _ := u["id"].(string)
	if id == "" || s.access == "" || s.refresh == "" {
		t.Fatalf("login answer lacks a user id or a token: %s, cookies %v", r.raw, cookieNames(r.cookies))
	}
	return s, id
}

// forgeClaims signs exactly claims with method and key.
func forgeClaims(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("forging a token: %v", err)
	}
	return s
}

// valineToken returns the claims the valine backend issues, for sub, of
// type typ, expiring at exp.
func valineToken(sub, typ string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "type": typ, "iat": time.Now().Unix(), "exp": exp.Unix()}
}

// segment decodes part i (0 header, 1 payload) of a token, unverified.
func segment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decoding token part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding token part %d: %v", i, err)
	}
	return m
}

// withPayload returns token with its payload replaced by claims and its
// header and signature kept: a tampered token.
func withPayload(t *testing.T, token string, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("encoding claims: %v", err)
	}
	parts := strings.Split(token, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// me calls the profile endpoint with an optional access cookie and an
// optional Authorization header, and a User-Agent.
func me(t *testing.T, w *testbed.World, path, cookie, authorization, userAgent string) response {
	t.Helper()
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	if userAgent != "" {
		h.Set("User-Agent", userAgent)
	}
	var cookies []*http.Cookie
	if cookie != "" {
		cookies = append(cookies, &http.Cookie{Name: w.Profile.AccessCookie, Value: cookie})
	}
	return call(t, http.MethodGet, w.APIURL+path, nil, h, cookies...)
}

// allLogLines returns every message in the World's log group, every page,
// in the order the emulator returns them.
func allLogLines(t *testing.T, w *testbed.World) []string {
	t.Helper()
	c := cloudwatchlogs.NewFromConfig(w.AWS)
	var lines []string
	p := cloudwatchlogs.NewFilterLogEventsPaginator(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(w.LogGroup)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("FilterLogEvents: %v", err)
		}
		for _, e := range out.Events {
			lines = append(lines, aws.ToString(e.Message))
		}
	}
	return lines
}

// cookieNamed returns the named cookie of an answer, nil if absent.
func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// cookieNames lists the names of cookies.
func cookieNames(cs []*http.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// fromLocalIP is a transport whose connections leave from ip, so that the
// API sees another source IP (Linux routes all of 127.0.0.0/8 to loopback).
func fromLocalIP(ip string) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
}

// jsonEqual reports whether raw is the JSON document want, whatever its spacing.
func jsonEqual(t *testing.T, raw, want string) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal([]byte(raw), &a) != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
