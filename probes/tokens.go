package probes

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valine/valine-check/internal/secret"
)

// Inspection is what can be read from a token without its secret. The
// signature is not checked: nothing here says the token is genuine.
type Inspection struct {
	Fingerprint string         `json:"fingerprint"`
	Header      map[string]any `json:"header"`
	Claims      map[string]any `json:"claims"`
	Algorithm   string         `json:"algorithm"`
	IssuedAt    *time.Time     `json:"issuedAt,omitempty"`
	ExpiresAt   *time.Time     `json:"expiresAt,omitempty"`
	Expired     bool           `json:"expired"`
}

// ErrMalformedToken wraps every failure to read a token's structure.
var ErrMalformedToken = errors.New("malformed token")

// Inspect decodes a token's header and claims without verifying it and tells
// whether it has expired at now.
func Inspect(t secret.Token, now time.Time) (Inspection, error) {
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(t.Reveal(), claims)
	if err != nil {
		// The parser's error never quotes the token.
		return Inspection{}, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	in := Inspection{
		Fingerprint: t.Fingerprint(),
		Header:      parsed.Header,
		Claims:      claims,
	}
	in.Algorithm, _ = parsed.Header["alg"].(string)
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		v := iat.UTC()
		in.IssuedAt = &v
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		v := exp.UTC()
		in.ExpiresAt = &v
		in.Expired = !now.Before(v)
	}
	return in, nil
}

// Claims returns a token's claims, unverified.
func Claims(t secret.Token) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(t.Reveal(), claims); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	return claims, nil
}

// Forge signs claims with key using method (jwt.SigningMethodHS256 and its
// HMAC siblings). An empty key is allowed on purpose: the security battery
// needs a token signed with one.
func Forge(claims jwt.MapClaims, method jwt.SigningMethod, key secret.Secret) (secret.Token, error) {
	s, err := jwt.NewWithClaims(method, claims).SignedString(key.Reveal())
	if err != nil {
		return secret.Token{}, fmt.Errorf("signing %s token: %w", method.Alg(), err)
	}
	return secret.NewToken(s), nil
}

// Resign returns a token with the same claims as t, signed HS256 with key.
// This is how an old token is made after a rotation: the claims of a freshly
// issued token, signed with the secret that was replaced.
func Resign(t secret.Token, key secret.Secret) (secret.Token, error) {
	claims, err := Claims(t)
	if err != nil {
		return secret.Token{}, err
	}
	return Forge(claims, jwt.SigningMethodHS256, key)
}

// UnsignedToken returns t's claims under an alg=none header with an empty
// signature: the classic forgery an API must refuse.
func UnsignedToken(t secret.Token) (secret.Token, error) {
	claims, err := Claims(t)
	if err != nil {
		return secret.Token{}, err
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		return secret.Token{}, fmt.Errorf("building alg=none token: %w", err)
	}
	return secret.NewToken(s), nil
}

// TamperedSignature returns t with the first byte of its signature changed,
// so header and claims are intact and only the signature is wrong.
func TamperedSignature(t secret.Token) (secret.Token, error) {
	parts := strings.Split(t.Reveal(), ".")
	if len(parts) != 3 || parts[2] == "" {
		return secret.Token{}, fmt.Errorf("%w: expected three segments with a signature", ErrMalformedToken)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return secret.Token{}, fmt.Errorf("%w: signature is not base64url", ErrMalformedToken)
	}
	sig[0] ^= 0xff
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return secret.NewToken(strings.Join(parts, ".")), nil
}

// EmptyKeyToken returns t's claims signed HS256 with an empty key. It is
// computed here rather than through Forge so that the test does not depend on
// a library's willingness to sign with nothing.
func EmptyKeyToken(t secret.Token) (secret.Token, error) {
	claims, err := Claims(t)
	if err != nil {
		return secret.Token{}, err
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		return secret.Token{}, fmt.Errorf("encoding claims: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, nil)
	mac.Write([]byte(signing))
	return secret.NewToken(signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))), nil
}

// NamedSecret is a candidate secret with a label the user recognises
// ("old", "current", "candidate 2"). It prints the label and fingerprint.
type NamedSecret struct {
	Label  string        `json:"label"`
	Secret secret.Secret `json:"fingerprint"`
}

// SignedWith reports whether key produced t's signature, for t's own HMAC
// algorithm. Expiry is ignored: an expired token still has a signer.
func SignedWith(t secret.Token, key secret.Secret) bool {
	_, err := jwt.Parse(t.Reveal(), func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("not an HMAC token: %s", tok.Method.Alg())
		}
		return key.Reveal(), nil
	}, jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}))
	return err == nil
}

// WhichSecret returns the candidate that signed t, or false when none did.
func WhichSecret(t secret.Token, candidates []NamedSecret) (NamedSecret, bool) {
	for _, c := range candidates {
		if SignedWith(t, c.Secret) {
			return c, true
		}
	}
	return NamedSecret{}, false
}
