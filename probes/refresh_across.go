package probes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/valine/valine-check/internal/secret"
)

// The refresh-across-rotation checks try a refresh token issued before the
// change, the case a key rotation most often breaks (ory/hydra's PR #3942):
// during a grace period it must still refresh, into an access token signed
// with the new secret; after a maintenance or emergency rotation, or a
// finalize, it must be refused.

// oldRefresh finds the refresh token from before the rotation: the one
// given (VALINE_OLD_REFRESH_TOKEN, or a rotation's baseline session), or
// one forged from the fresh session's with the old secret.
func oldRefresh(t Target, cfg Config) (secret.Token, string, *Result) {
	return fromBeforeTheChange(t, cfg, cfg.OldRefresh, "old refresh token", "VALINE_OLD_REFRESH_TOKEN", func(s Session) secret.Token { return s.Refresh })
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
