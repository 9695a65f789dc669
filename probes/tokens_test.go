package probes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/onsi/gomega/format"
	"github.com/valine/valine-check/internal/secret"
)

const (
	testSecretA = "c2VjcmV0LUEtMzItYnl0ZXMtb2YtcmFuZG9tbmVzcyE="
	testSecretB = "c2VjcmV0LUItMzItYnl0ZXMtb2YtcmFuZG9tbmVzcyE="
)

func issue(t *testing.T, key string, exp time.Time) secret.Token {
	t.Helper()
	tok, err := Forge(jwt.MapClaims{"sub": "u1", "typ": "access", "iat": exp.Add(-15 * time.Minute).Unix(), "exp": exp.Unix()}, jwt.SigningMethodHS256, secret.NewSecret(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSecretAndTokenNeverPrintTheirValue(t *testing.T) {
	s := secret.NewSecret(testSecretA)
	tok := issue(t, testSecretA, time.Now().Add(time.Hour))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "token", tok)
	js, _ := json.Marshal(map[string]any{"s": s, "t": tok, "m": map[secret.Secret]int{s: 1}})
	outputs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x", tok, tok, tok, tok, tok, tok),
		fmt.Sprintf("%+v", struct{ S secret.Secret }{s}), fmt.Sprintf("%#v", Session{Access: tok}),
		string(js), logs.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, testSecretA) || strings.Contains(out, tok.Reveal()) {
			t.Errorf("value leaked in %q", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), "sha256:") {
		t.Errorf("fingerprint missing: %s", s)
	}
	if secret.NewSecret("").String() != "empty" {
		t.Errorf("empty secret prints %q", secret.NewSecret(""))
	}
}

func TestInspect(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		tok         secret.Token
		wantExpired bool
		wantErr     bool
	}{
		{name: "valid", tok: issue(t, testSecretA, now.Add(time.Hour))},
		{name: "expired", tok: issue(t, testSecretA, now.Add(-time.Second)), wantExpired: true},
		{name: "garbage", tok: secret.NewToken("not.a.jwt"), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := Inspect(tc.tok, now)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Expired != tc.wantExpired || in.Algorithm != "HS256" || in.Claims["sub"] != "u1" || in.ExpiresAt == nil {
				t.Errorf("got %+v", in)
			}
		})
	}
}

func TestForgeriesAndWhichSecret(t *testing.T) {
	a, b := secret.NewSecret(testSecretA), secret.NewSecret(testSecretB)
	orig := issue(t, testSecretA, time.Now().Add(time.Hour))
	candidates := []NamedSecret{{Label: "old", Secret: b}, {Label: "current", Secret: a}}

	if got, ok := WhichSecret(orig, candidates); !ok || got.Label != "current" {
		t.Errorf("orig: got %v %v", got, ok)
	}
	resigned, err := Resign(orig, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := WhichSecret(resigned, candidates); !ok || got.Label != "old" {
		t.Errorf("resigned: got %v %v", got, ok)
	}
	rc, _ := Claims(resigned)
	if rc["sub"] != "u1" {
		t.Errorf("resign lost claims: %v", rc)
	}

	tampered, err := TamperedSignature(orig)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := WhichSecret(tampered, candidates); ok || tampered.Reveal() == orig.Reveal() {
		t.Error("tampered token still verifies")
	}

	empty, err := EmptyKeyToken(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !SignedWith(empty, secret.NewSecret("")) || SignedWith(empty, a) {
		t.Error("empty-key token is not signed with the empty key alone")
	}

	none, err := UnsignedToken(orig)
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := Inspect(none, time.Now()); in.Algorithm != "none" || !strings.HasSuffix(none.Reveal(), ".") {
		t.Errorf("alg none token: %+v", in)
	}
	if SignedWith(none, a) {
		t.Error("alg none must never verify")
	}

	hs512, err := Forge(rc, jwt.SigningMethodHS512, a)
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := Inspect(hs512, time.Now()); in.Algorithm != "HS512" || !SignedWith(hs512, a) {
		t.Errorf("hs512: %+v", in)
	}
}

func TestGomegaFormattingShowsNoValue(t *testing.T) {
	s := secret.NewSecret(testSecretA)
	tok := issue(t, testSecretA, time.Now().Add(time.Hour))
	r := passed("ok", nil)
	r.session = &Session{Access: tok, Refresh: tok}
	for _, v := range []any{s, tok, *r.session, r, []secret.Secret{s}, map[string]secret.Token{"t": tok}} {
		out := format.Object(v, 0)
		if strings.Contains(out, testSecretA) || strings.Contains(out, tok.Reveal()) {
			t.Errorf("gomega formatting leaks: %s", out)
		}
	}
}
