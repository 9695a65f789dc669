package probes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// exchange is one request and its answer as seen on the wire.
type exchange struct {
	req     *http.Request
	reqBody string
	status  int
	body    map[string]any
	cookies map[string]string
}

// wireRecorder keeps every exchange crossing it.
type wireRecorder struct{ got []exchange }

func (rec *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	ex := exchange{req: req, reqBody: string(reqBody), status: resp.StatusCode, cookies: map[string]string{}}
	_ = json.Unmarshal(raw, &ex.body)
	for _, c := range resp.Cookies() {
		ex.cookies[c.Name] = c.Value
	}
	rec.got = append(rec.got, ex)
	return resp, nil
}

// The cookie deployment: the access token comes in the body and a cookie,
// the refresh token only in a cookie, and refresh reads only the cookie.
func TestCookieProfileSession(t *testing.T) {
	t.Parallel()
	w := startWorld(t, testbed.Options{Profile: profile.Presets["cookie"]})
	ctx := t.Context()
	rec := &wireRecorder{}
	c := client(w)
	c.HTTP = &http.Client{Transport: rec}

	s, err := c.Login(ctx, w.ProbeEmail, secret.NewSecret(w.ProbePassword))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	login := rec.got[len(rec.got)-1]
	if body, _ := login.body["accessToken"].(string); body == "" || body != s.Access.Reveal() {
		t.Errorf("session access %v is not the body's accessToken", s.Access)
	}
	if login.cookies["access_token"] != s.Access.Reveal() {
		t.Errorf("the access_token cookie is not the session's access token")
	}
	if s.Refresh.IsEmpty() || login.cookies["refresh_token"] != s.Refresh.Reveal() {
		t.Errorf("session refresh %v is not the refresh_token cookie", s.Refresh)
	}
	if _, ok := login.body["refreshToken"]; ok {
		t.Errorf("cookie login answered a refresh token in the body")
	}

	next, err := c.Refresh(ctx, s)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	ref := rec.got[len(rec.got)-1]
	if ref.reqBody != "" {
		t.Errorf("refresh sent a body %q; the cookie profile refreshes by cookie only", ref.reqBody)
	}
	if ck, err := ref.req.Cookie("refresh_token"); err != nil || ck.Value != s.Refresh.Reveal() {
		t.Errorf("refresh did not send the refresh_token cookie")
	}
	if next.Access.IsEmpty() || next.Access.Reveal() == s.Access.Reveal() {
		t.Errorf("refresh gave no new access token: %v", next.Access)
	}
	if next.Refresh.IsEmpty() {
		t.Errorf("refresh lost the refresh token")
	}
	resp, err := c.Me(ctx, next.Access)
	if err != nil || resp.Status != http.StatusOK {
		t.Errorf("Me with the refreshed token: %+v, %v", resp, err)
	}

	// The API reads the refresh token from the cookie only: the same token
	// in a JSON body is refused, so the probe's refresh above proves the
	// cookie transport. A profile that says "body" gets the refusal.
	bodyProfile := w.Profile
	bodyProfile.RefreshTransport = profile.TransportBody
	bodyProfile.RefreshField = "refreshToken"
	bc := &probes.Client{BaseURL: w.APIURL, Profile: bodyProfile}
	_, err = bc.Refresh(ctx, s)
	var se *probes.StatusError
	if !errors.As(err, &se) || se.Response.Status != http.StatusUnauthorized {
		t.Errorf("refresh with the token in the body: %v, want HTTP 401", err)
	}
}

// The cookie preset end to end after a maintenance rotation: every check
// passes in strict mode. Grace cannot be staged (the preset names no
// secondary variable), and a grace run says so.
func TestCookieProfileRuns(t *testing.T) {
	t.Parallel()
	opts := testbed.Options{Profile: profile.Presets["cookie"]}

	t.Run("strict after a maintenance rotation", func(t *testing.T) {
		t.Parallel()
		r := rotatedRig(t, opts, probes.Strict)
		rep := r.run(t, fastRunner())
		wantOutcomes(t, rep, nil, probes.Pass)
		if rep.Status() != probes.Pass || rep.Profile != "cookie" {
			t.Errorf("status %s, profile %q", rep.Status(), rep.Profile)
		}
	})

	t.Run("grace is impossible", func(t *testing.T) {
		t.Parallel()
		r := baseRig(t, opts, probes.Grace)
		err := r.w.SetSecrets(t.Context(), string(generateSecret(t).Reveal()), r.w.InitialSecret())
		if err == nil {
			t.Fatalf("SetSecrets with a secondary succeeded on a profile without a secondary variable")
		}
		r.rotate(t, probes.Strict) // all the cookie deployment can do
		rep := r.runOnly(t, fastRunner(), "old-token-accepted")
		wantOutcomes(t, rep, map[string]probes.Outcome{"old-token-accepted": probes.Fail}, probes.Pass)
		res := mustResult(t, rep, "old-token-accepted")
		wantReason(t, res, "profile cookie names no secondary variable", "no grace period is possible")
		// The profile rules a grace period out: no wait can change that.
		if res.Attempts != 1 {
			t.Errorf("old-token-accepted made %d attempts; the profile's answer needs none", res.Attempts)
		}
	})
}
