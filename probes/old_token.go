package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// oldToken finds the token from before the rotation: the one given, or one
// forged from the fresh session's claims with the old secret. A non-nil
// Result means the check cannot go on and says why.
func oldToken(t Target, cfg Config) (Token, string, *Result) {
	if !cfg.OldToken.IsEmpty() {
		in, err := Inspect(cfg.OldToken, cfg.now())
		if err != nil {
			r := errored("the given old token cannot be read: "+err.Error(), nil)
			return Token{}, "", &r
		}
		if !in.Expired {
			return cfg.OldToken, "given", nil
		}
		if cfg.OldSecret.IsEmpty() {
			r := warned(fmt.Sprintf("the given old token %s expired at %s; an expired token is refused whatever the secret, so it proves nothing: give a fresh one or the old secret", cfg.OldToken, in.ExpiresAt.Format(time.RFC3339)), nil)
			return Token{}, "", &r
		}
		// The old secret can make a live old token; the expired one is useless.
	}
	if cfg.OldSecret.IsEmpty() {
		r := skipped("no old token or old secret given (VALINE_OLD_TOKEN or VALINE_OLD_SECRET), so there is no old token to try")
		return Token{}, "", &r
	}
	if sameSecrets(cfg) {
		r := errored(fmt.Sprintf("the old and the current secret are the same (%s): nothing was rotated", cfg.OldSecret), nil)
		return Token{}, "", &r
	}
	s, skip := needSession(t)
	if skip != nil {
		return Token{}, "", skip
	}
	tok, err := Resign(s.Access, cfg.OldSecret)
	if err != nil {
		r := errored("forging the old token: "+err.Error(), nil)
		return Token{}, "", &r
	}
	source := "forged with old secret " + cfg.OldSecret.Fingerprint()
	if !cfg.OldToken.IsEmpty() {
		source += " (the given old token has expired)"
	}
	return tok, source, nil
}

// OldTokenRejected checks, after a maintenance or emergency rotation (or a
// finalize), that a token signed with the old secret is refused.
func OldTokenRejected(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	tok, source, stop := oldToken(t, cfg)
	if stop != nil {
		return *stop
	}
	resp, err := t.meDeliberately(ctx, tok, cfg)
	if err != nil {
		return fromCallError("calling "+t.API.Profile.ProfilePath+" with the old token", err)
	}
	details := map[string]any{"status": resp.Status, "oldToken": source}
	switch {
	case t.API.IsRejection(resp):
		return passed(fmt.Sprintf("the old token (%s) was refused with HTTP %d", source, resp.Status), details)
	case resp.Status >= 200 && resp.Status < 300:
		return failed(fmt.Sprintf("the API still accepts a token signed with the old secret (%s): HTTP %d; the old secret is still trusted somewhere", source, resp.Status), details)
	default:
		return failed(fmt.Sprintf("the old token (%s) got HTTP %d %s, not the expected rejection %d", source, resp.Status, resp.Body, t.API.Profile.RejectStatus), details)
	}
}

// OldTokenAccepted checks, during a zero-downtime grace period, that a token
// signed with the old secret is still honoured (through the secondary variable).
func OldTokenAccepted(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if stop := needSecondary(t); stop != nil {
		return *stop
	}
	tok, source, stop := oldToken(t, cfg)
	if stop != nil {
		return *stop
	}
	resp, err := t.API.Me(ctx, tok)
	if err != nil {
		return fromCallError("calling "+t.API.Profile.ProfilePath+" with the old token", err)
	}
	details := map[string]any{"status": resp.Status, "oldToken": source}
	if resp.Status != http.StatusOK {
		return failed(fmt.Sprintf("during the grace period the API refused a token signed with the old secret (%s): HTTP %d %s; users would be logged out: is %s set and does the API read it?",
			source, resp.Status, resp.Body, orNone(t.API.Profile.SecondaryVar)), details)
	}
	return passed(fmt.Sprintf("the old token (%s) is still accepted, as the grace period requires", source), details)
}

// needSecondary fails at once, without a retry, a grace-period check
// against a profile that names no secondary variable: no wait can make such
// a deployment honour the old secret.
func needSecondary(t Target) *Result {
	if t.API.Profile.SecondaryVar != "" {
		return nil
	}
	r := settledFail(fmt.Sprintf("profile %s names no secondary variable: no grace period is possible (rotate with --mode maintenance and verify with --expect strict)", t.API.Profile.Name), nil)
	return &r
}

func orNone(s string) string {
	if s == "" {
		return "a secondary-secret variable (this profile names none)"
	}
	return s
}
