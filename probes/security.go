package probes

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valine/valine-check/internal/secret"
)

// forgery builds an attack token from the probe's fresh session. A non-nil
// Result means it cannot be built and says why.
type forgery func(s Session, cfg Config) (secret.Token, *Result)

// securityProbe returns a Probe that sends the forgery to the profile
// endpoint and expects the profile's rejection. Acceptance is a finding,
// stated with what it lets an attacker do.
func securityProbe(attack, impact string, forge forgery) Probe {
	return func(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
		s, skip := needSession(t)
		if skip != nil {
			return *skip
		}
		tok, stop := forge(s, cfg)
		if stop != nil {
			return *stop
		}
		resp, err := t.meDeliberately(ctx, tok, cfg)
		if err != nil {
			return fromCallError("sending "+attack, err)
		}
		details := map[string]any{"status": resp.Status, "attack": attack}
		switch {
		case t.API.IsRejection(resp):
			return passed(fmt.Sprintf("%s was refused with HTTP %d", attack, resp.Status), details)
		case resp.Status >= 200 && resp.Status < 300:
			return failed(fmt.Sprintf("FINDING: the API accepted %s (HTTP %d): %s", attack, resp.Status, impact), details)
		default:
			return warned(fmt.Sprintf("%s was not accepted, but got HTTP %d %s instead of the rejection %d", attack, resp.Status, resp.Body, t.API.Profile.RejectStatus), details)
		}
	}
}

// AlgNone sends the fresh token's claims with alg=none and no signature.
var AlgNone = securityProbe("an unsigned alg=none token",
	"anyone can forge any identity without a secret",
	func(s Session, _ Config) (secret.Token, *Result) { return orErrored(UnsignedToken(s.Access)) })

// AlgHS384HS512 sends the fresh token's claims signed HS384 and HS512
// with the current secret: a backend that verifies without naming the
// algorithm (jsonwebtoken's verify(token, secret) with no algorithms, as the
// real Valine backend does) accepts both. The finding names exactly which
// were accepted.
func AlgHS384HS512(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	s, skip := needSession(t)
	if skip != nil {
		return *skip
	}
	if stop := needCurrentSecret(s, cfg); stop != nil {
		return *stop
	}
	claims, err := Claims(s.Access)
	if err != nil {
		return errored("building the attack token: "+err.Error(), nil)
	}
	var accepted, refused, odd []string
	statuses := map[string]int{}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		tok, err := Forge(claims, m, cfg.CurrentSecret)
		if err != nil {
			return errored("building the "+m.Alg()+" attack token: "+err.Error(), nil)
		}
		resp, err := t.meDeliberately(ctx, tok, cfg)
		if err != nil {
			return fromCallError("sending an "+m.Alg()+" token signed with the current secret", err)
		}
		statuses[m.Alg()] = resp.Status
		switch {
		case t.API.IsRejection(resp):
			refused = append(refused, m.Alg())
		case resp.Status >= 200 && resp.Status < 300:
			accepted = append(accepted, m.Alg())
		default:
			odd = append(odd, fmt.Sprintf("%s got HTTP %d %s", m.Alg(), resp.Status, resp.Body))
		}
	}
	details := map[string]any{"statuses": statuses, "accepted": accepted, "refused": refused}
	switch {
	case len(accepted) > 0:
		msg := fmt.Sprintf("FINDING: accepted %s tokens signed with the current secret: the algorithm is not pinned to HS256, so the API trusts whatever algorithm a token names", strings.Join(accepted, " and "))
		if len(refused) > 0 {
			msg += "; " + strings.Join(refused, " and ") + " refused"
		}
		// Say how far it goes: whether alg=none, the worst case, is refused.
		if none, err := UnsignedToken(s.Access); err == nil {
			if resp, err := t.meDeliberately(ctx, none, cfg); err == nil {
				statuses["none"] = resp.Status
				if t.API.IsRejection(resp) {
					msg += "; alg=none was refused"
				} else if resp.Status >= 200 && resp.Status < 300 {
					msg += "; alg=none was ACCEPTED too"
				}
			}
		}
		return failed(msg, details)
	case len(odd) > 0:
		return warned(fmt.Sprintf("HS384 and HS512 tokens were not accepted, but %s instead of the rejection %d", strings.Join(odd, "; "), t.API.Profile.RejectStatus), details)
	}
	return passed("HS384 and HS512 tokens signed with the current secret were both refused: HS256 is pinned", details)
}

// NoExp sends the fresh token's claims without exp, signed HS256 with the
// current secret.
var NoExp = securityProbe("a token without exp, signed with the current secret",
	"it never expires, so a stolen token works forever",
	func(s Session, cfg Config) (secret.Token, *Result) {
		if stop := needCurrentSecret(s, cfg); stop != nil {
			return secret.Token{}, stop
		}
		claims, err := Claims(s.Access)
		if err != nil {
			return orErrored(secret.Token{}, err)
		}
		delete(claims, "exp")
		return orErrored(Forge(claims, jwt.SigningMethodHS256, cfg.CurrentSecret))
	})

// Expired sends the fresh token's claims, expired an hour ago, signed with the current secret.
var Expired = securityProbe("a token that expired an hour ago, signed with the current secret",
	"stolen tokens never stop working",
	func(s Session, cfg Config) (secret.Token, *Result) {
		if stop := needCurrentSecret(s, cfg); stop != nil {
			return secret.Token{}, stop
		}
		claims, err := Claims(s.Access)
		if err != nil {
			return orErrored(secret.Token{}, err)
		}
		now := cfg.now()
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
		return orErrored(Forge(claims, jwt.SigningMethodHS256, cfg.CurrentSecret))
	})

// Tampered sends the fresh token with one signature byte flipped.
var Tampered = securityProbe("the fresh token with a tampered signature",
	"the API does not check signatures, so anyone can edit a token's claims",
	func(s Session, _ Config) (secret.Token, *Result) { return orErrored(TamperedSignature(s.Access)) })

// EmptyKey sends the fresh token's claims signed HS256 with an empty key.
var EmptyKey = securityProbe("a token signed with an empty key",
	"the API verifies with an empty secret (a missing variable?), so anyone can sign tokens",
	func(s Session, _ Config) (secret.Token, *Result) { return orErrored(EmptyKeyToken(s.Access)) })

// RefreshAsAccess sends the refresh token to the profile endpoint.
var RefreshAsAccess = securityProbe("the refresh token used as an access token",
	"long-lived refresh tokens open every endpoint, so a leaked one is worth a week of access",
	func(s Session, _ Config) (secret.Token, *Result) {
		if s.Refresh.IsEmpty() {
			r := skipped("the login gave no refresh token")
			return secret.Token{}, &r
		}
		return s.Refresh, nil
	})

func needCurrentSecret(s Session, cfg Config) *Result {
	if cfg.CurrentSecret.IsEmpty() {
		r := skipped("needs the current secret (VALINE_SECRET) to sign the attack token")
		return &r
	}
	if !SignedWith(s.Access, cfg.CurrentSecret) {
		r := warned(fmt.Sprintf("the given current secret %s did not sign the fresh token, so an attack signed with it would prove nothing", cfg.CurrentSecret), nil)
		return &r
	}
	return nil
}

func orErrored(t secret.Token, err error) (secret.Token, *Result) {
	if err != nil {
		r := errored("building the attack token: "+err.Error(), nil)
		return secret.Token{}, &r
	}
	return t, nil
}
