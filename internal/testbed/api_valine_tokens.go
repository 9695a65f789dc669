package testbed

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Default token lifetimes of the real backend.
const (
	valineAccessTTL  = 24 * time.Hour
	valineRefreshTTL = 7 * 24 * time.Hour
)

// valineClaims are the real backend's claims: {sub, type, iat, exp} when it
// issues a token. On reading, a legacy userId stands in for a missing sub,
// and nbf is honoured as jsonwebtoken honours it.
type valineClaims struct {
	Sub       string           `json:"sub,omitempty"`
	UserID    any              `json:"userId,omitempty"`
	Type      string           `json:"type,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
}

// GetExpirationTime implements jwt.Claims.
func (c valineClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }

// GetIssuedAt implements jwt.Claims.
func (c valineClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt, nil }

// GetNotBefore implements jwt.Claims.
func (c valineClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore, nil }

// GetIssuer implements jwt.Claims.
func (c valineClaims) GetIssuer() (string, error) { return "", nil }

// GetSubject implements jwt.Claims.
func (c valineClaims) GetSubject() (string, error) { return c.Sub, nil }

// GetAudience implements jwt.Claims.
func (c valineClaims) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }

// userID is `decoded.sub || decoded.userId`.
func (c valineClaims) userID() string {
	if c.Sub != "" {
		return c.Sub
	}
	switch v := c.UserID.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// signValine signs an HS256 token {sub, type, iat, exp} for the user id.
// iat is in whole seconds and there is no jti, so two tokens issued for one
// user in the same second are byte-identical, as on the real backend.
func signValine(secret, userID, typ string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := valineClaims{
		Sub:       userID,
		Type:      typ,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// valineMethods are what jwt.verify(token, secret) accepts with no
// algorithms option and a string secret: the HMAC family.
var valineMethods = []string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodHS384.Alg(), jwt.SigningMethodHS512.Alg()}

// verifyValine is jwt.verify(raw, secret): any HMAC algorithm signed with
// one of keys, exp checked only when present, nbf checked when present,
// alg=none refused. It says nothing about why a token fails, because the
// real handlers swallow the error. The type claim is the caller's to check.
// These misbehaviours relax it as they name: AcceptAlgNone, AcceptExpired,
// SkipSignature (an HMAC token with any signature, still expiry-checked).
func verifyValine(raw string, keys []string, m Misbehaviour) (valineClaims, bool) {
	if raw == "" || len(keys) == 0 {
		return valineClaims{}, false
	}
	var unverified valineClaims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &unverified)
	if err != nil {
		return valineClaims{}, false
	}
	methods := valineMethods
	if m&AcceptAlgNone != 0 {
		methods = append(slices.Clone(methods), jwt.SigningMethodNone.Alg())
	}
	if !slices.Contains(methods, tok.Method.Alg()) {
		return valineClaims{}, false
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods)}
	if m&AcceptExpired != 0 {
		opts = append(opts, jwt.WithoutClaimsValidation())
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, []byte(k))
	}
	var claims valineClaims
	_, err = jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if t.Method == jwt.SigningMethodNone {
			return jwt.UnsafeAllowNoneSignatureType, nil
		}
		return set, nil
	}, opts...)
	switch {
	case err == nil:
		return claims, true
	case m&SkipSignature != 0 && tok.Method != jwt.SigningMethodNone && errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if m&AcceptExpired == 0 && unverified.ExpiresAt != nil && !time.Now().Before(unverified.ExpiresAt.Time) {
			return valineClaims{}, false
		}
		return unverified, true
	}
	return valineClaims{}, false
}
