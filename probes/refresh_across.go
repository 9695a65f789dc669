package probes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// The refresh-across-rotation checks try a refresh token issued before the
// change, the case a key rotation most often breaks (ory/hydra's PR #3942):
// during a grace period it must still refresh, into an access token signed
// with the new secret; after a maintenance or emergency rotation, or a
// finalize, it must be refused.

// oldRefresh finds the refresh token from before the rotation: the one
// given (when the old secret, if known, signed it), or one forged from the
// fresh session's refresh token with the old secret. A non-nil Result means
// the check cannot go on and says why.
func oldRefresh(t Target, cfg Config) (Token, string, *Result) {
	if given := cfg.OldRefresh; !given.IsEmpty() && (cfg.OldSecret.IsEmpty() || SignedWith(given, cfg.OldSecret)) {
		in, err := Inspect(given, cfg.now())
		switch {
		case err != nil:
			r := errored("the given old refresh token cannot be read: "+err.Error(), nil)
			return Token{}, "", &r
		case !in.Expired:
			return given, "issued before the change", nil
		case cfg.OldSecret.IsEmpty():
			r := warned(fmt.Sprintf("the given old refresh token %s has expired, so it proves nothing: give a live one or the old secret", given), nil)
			return Token{}, "", &r
		}
	}
	if cfg.OldSecret.IsEmpty() {
		r := skipped("no old refresh token or old secret given (VALINE_OLD_REFRESH_TOKEN or VALINE_OLD_SECRET), so there is no refresh token from before the change to try")
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
	if s.Refresh.IsEmpty() {
		r := skipped("the login gave no refresh token, so none from before the change can be forged")
		return Token{}, "", &r
	}
	tok, err := Resign(s.Refresh, cfg.OldSecret)
	if err != nil {
		r := errored("forging the old refresh token: "+err.Error(), nil)
		return Token{}, "", &r
	}
	return tok, "forged with old secret " + cfg.OldSecret.Fingerprint(), nil
}

// OldRefreshAccepted checks, during a zero-downtime grace period, that a
// refresh token issued before the change still refreshes, and that the
// access token it gives is signed with the new secret and accepted.
func OldRefreshAccepted(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if stop := needSecondary(t); stop != nil {
		return *stop
	}
	tok, source, stop := oldRefresh(t, cfg)
	if stop != nil {
		return *stop
	}
	details := map[string]any{"oldRefresh": source}
	next, err := t.API.Refresh(ctx, Session{Refresh: tok})
	var se *StatusError
	if errors.As(err, &se) {
		details["status"] = se.Response.Status
		return failed(fmt.Sprintf("during the grace period the API refused to refresh with a refresh token signed with the old secret (%s): HTTP %d %s; users are logged out when their access token expires",
			source, se.Response.Status, se.Response.Body), details)
	}
	if err != nil {
		return fromCallError("refreshing with the old refresh token", err)
	}
	details["refreshedAccess"] = next.Access.String()
	if SignedWith(next.Access, cfg.OldSecret) || (!cfg.CurrentSecret.IsEmpty() && !SignedWith(next.Access, cfg.CurrentSecret)) {
		return failed(fmt.Sprintf("refreshing with the old refresh token (%s) gave an access token not signed with the new secret: the API signs with the secret that verified the refresh token, so tokens from before the change outlive the grace period", source), details)
	}
	resp, err := t.API.Me(ctx, next.Access)
	if err != nil {
		return fromCallError("calling "+t.API.Profile.ProfilePath+" with the refreshed token", err)
	}
	details["status"] = resp.Status
	if resp.Status != http.StatusOK {
		return failed(fmt.Sprintf("the access token refreshed from the old refresh token was refused by %s: HTTP %d %s", t.API.Profile.ProfilePath, resp.Status, resp.Body), details)
	}
	return passed(fmt.Sprintf("the old refresh token (%s) still refreshes, into an access token signed with the new secret", source), details)
}

// OldRefreshRejected checks, after a maintenance or emergency rotation or a
// finalize, that a refresh token issued before the change is refused.
func OldRefreshRejected(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	tok, source, stop := oldRefresh(t, cfg)
	if stop != nil {
		return *stop
	}
	details := map[string]any{"oldRefresh": source}
	_, err := t.refreshDeliberately(ctx, Session{Refresh: tok}, cfg)
	var se *StatusError
	switch {
	case err == nil:
		return failed(fmt.Sprintf("the API still refreshes with a refresh token signed with the old secret (%s): a session from before the rotation lives on", source), details)
	case errors.As(err, &se) && se.Response.Status == t.API.Profile.RejectStatus:
		details["status"] = se.Response.Status
		return passed(fmt.Sprintf("the old refresh token (%s) was refused with HTTP %d", source, se.Response.Status), details)
	case errors.As(err, &se):
		details["status"] = se.Response.Status
		return failed(fmt.Sprintf("the old refresh token (%s) got HTTP %d %s, not the expected rejection %d", source, se.Response.Status, se.Response.Body, t.API.Profile.RejectStatus), details)
	}
	r := fromCallError("refreshing with the old refresh token", err)
	if r.Outcome == Fail {
		// An answer without a token is a refusal of sorts, but not the
		// profile's: say so rather than pass.
		r.Reason += fmt.Sprintf(" (old refresh token %s)", source)
	}
	return r
}
