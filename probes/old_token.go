package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/valine/valine-check/internal/secret"
)

// oldToken finds the access token from before the rotation: the one given
// (VALINE_OLD_TOKEN), or one forged from the fresh session's with the old
// secret. A non-nil Result means the check cannot go on and says why.
func oldToken(t Target, cfg Config) (secret.Token, string, *Result) {
	return fromBeforeTheChange(t, cfg, cfg.OldToken, "old token", "VALINE_OLD_TOKEN", func(s Session) secret.Token { return s.Access })
}

// fromBeforeTheChange finds a token issued before the rotation: given,
// when it is live and (if the old secret is known) signed with it, else
// one forged from the fresh session's token (pick) re-signed with the old
// secret. noun and env name it in reasons. A non-nil Result means the check
// cannot go on and says why.
func fromBeforeTheChange(t Target, cfg Config, given secret.Token, noun, env string, pick func(Session) secret.Token) (secret.Token, string, *Result) {
	stop := func(r Result) (secret.Token, string, *Result) { return secret.Token{}, "", &r }
	if !given.IsEmpty() && (cfg.OldSecret.IsEmpty() || SignedWith(given, cfg.OldSecret)) {
		in, err := Inspect(given, cfg.now())
		switch {
		case err != nil:
			return stop(errored(fmt.Sprintf("the given %s cannot be read: %v", noun, err), nil))
		case !in.Expired:
			return given, "given, issued before the change", nil
		case cfg.OldSecret.IsEmpty():
			return stop(warned(fmt.Sprintf("the given %s %s expired at %s; an expired token is refused whatever the secret, so it proves nothing: give a fresh one or the old secret",
				noun, given, in.ExpiresAt.Format(time.RFC3339)), nil))
		}
		// The old secret can make a live one; the expired one is useless.
	}
	if cfg.OldSecret.IsEmpty() {
		return stop(skipped(fmt.Sprintf("no %s or old secret given (%s or VALINE_OLD_SECRET), so there is none from before the rotation to try", noun, env)))
	}
	if sameSecrets(cfg) {
		return stop(errored(fmt.Sprintf("the old and the current secret are the same (%s): nothing was rotated", cfg.OldSecret), nil))
	}
	s, skip := needSession(t)
	if skip != nil {
		return secret.Token{}, "", skip
	}
	fresh := pick(s)
	if fresh.IsEmpty() {
		return stop(skipped(fmt.Sprintf("the login gave no token to forge an %s from", noun)))
	}
	tok, err := Resign(fresh, cfg.OldSecret)
	if err != nil {
		return stop(errored(fmt.Sprintf("forging the %s: %v", noun, err), nil))
	}
	source := "forged with old secret " + cfg.OldSecret.Fingerprint()
	if !given.IsEmpty() {
		source += fmt.Sprintf(" (the given %s has expired or was not signed with it)", noun)
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
