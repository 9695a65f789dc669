package testbed

import (
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, carried in the "typ" claim.
const (
	typeAccess  = "access"
	typeRefresh = "refresh"
)

// tokenClaims are the claims the API issues: sub (user id), email, typ,
// iat, exp and jti.
type tokenClaims struct {
	Email string `json:"email,omitempty"`
	Typ   string `json:"typ,omitempty"`
	jwt.RegisteredClaims
}

// issueToken signs an HS256 token of type typ for u with secret.
func issueToken(secret string, u user, typ string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := tokenClaims{
		Email: u.email,
		Typ:   typ,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.id,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        randomHex(12),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}

// verdict is the outcome of one verification. secret names the key that
// verified the token (primary, secondary, accepted-old, none, unverified)
// and key is that key ("" for none and unverified); reason is a fixed
// phrase for a failure.
type verdict struct {
	ok     bool
	secret string
	key    string
	claims tokenClaims
	reason string
}

// candidate is a key to try and the name it is logged under.
type candidate struct{ key, label string }

// verifyToken checks raw as a token of type want against the secrets:
// HS256 only, primary first, then the secondary when one is set; exp is
// required (unless AcceptNoExp) and checked; the typ claim must match; a
// subject is required. Each misbehaviour in m relaxes exactly the check it
// names. old is every secret the API has ever read (for AcceptOldTokens).
func verifyToken(raw, want string, set secretSet, old []string, m Misbehaviour) verdict {
	fail := func(reason string) verdict { return verdict{reason: reason} }
	if raw == "" {
		return fail("missing token")
	}
	if set.primary == "" {
		return fail("no secret configured")
	}
	var unverified tokenClaims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &unverified)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenUnverifiable) {
			return fail("unexpected signing method")
		}
		return fail("token is malformed")
	}
	alg := tok.Method.Alg()
	methods := []string{jwt.SigningMethodHS256.Alg()}
	if m&AcceptAnyHMAC != 0 {
		methods = append(methods, jwt.SigningMethodHS384.Alg(), jwt.SigningMethodHS512.Alg())
	}
	if m&AcceptAlgNone != 0 {
		methods = append(methods, jwt.SigningMethodNone.Alg())
	}
	if !slices.Contains(methods, alg) {
		return fail("unexpected signing method " + plain(alg))
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired()}
	if m&AcceptNoExp != 0 {
		opts = []jwt.ParserOption{jwt.WithValidMethods(methods)}
	}
	if m&AcceptExpired != 0 {
		opts = []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithoutClaimsValidation()}
	}

	v := fail("signature is invalid")
	for _, c := range candidates(alg, set, old, m) {
		var claims tokenClaims
		_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
			if t.Method == jwt.SigningMethodNone {
				return jwt.UnsafeAllowNoneSignatureType, nil
			}
			return []byte(c.key), nil
		}, opts...)
		if err == nil {
			v = verdict{ok: true, secret: c.label, key: c.key, claims: claims}
			break
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return fail(reasonFor(err))
		}
	}
	if !v.ok && m&SkipSignature != 0 {
		noExp := unverified.ExpiresAt == nil
		if m&AcceptExpired == 0 && (noExp && m&AcceptNoExp == 0 || !noExp && !time.Now().Before(unverified.ExpiresAt.Time)) {
			return fail("token is expired")
		}
		v = verdict{ok: true, secret: "unverified", claims: unverified}
	}
	if !v.ok {
		return v
	}
	if typ := v.claims.Typ; typ != want && !(m&AcceptRefreshAsAccess != 0 && want == typeAccess && typ == typeRefresh) {
		return fail("wrong token type")
	}
	if v.claims.Subject == "" {
		return fail("token has no subject")
	}
	return v
}

// candidates lists the keys to try, in order.
func candidates(alg string, set secretSet, old []string, m Misbehaviour) []candidate {
	if alg == jwt.SigningMethodNone.Alg() {
		return []candidate{{label: "none"}}
	}
	cs := []candidate{{key: set.primary, label: "primary"}}
	if set.secondary != "" && m&IgnoreSecondary == 0 {
		cs = append(cs, candidate{key: set.secondary, label: "secondary"})
	}
	if m&AcceptOldTokens != 0 {
		for _, k := range old {
			if !slices.ContainsFunc(cs, func(c candidate) bool { return c.key == k }) {
				cs = append(cs, candidate{key: k, label: "accepted-old"})
			}
		}
	}
	return cs
}

// reasonFor maps a jwt error to a fixed phrase. It never uses the error's
// text, which may quote parts of the token.
func reasonFor(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token is expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token is unverifiable"
	default:
		return "token is invalid"
	}
}
