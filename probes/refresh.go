package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// Refresh checks that the refresh endpoint gives a new access token and that
// the profile endpoint accepts it.
func Refresh(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	s, skip := needSession(t)
	if skip != nil {
		return *skip
	}
	if s.Refresh.IsEmpty() {
		return failed("the login gave no refresh token, so refresh cannot be tried (check the profile's refreshField / refreshCookie)", nil)
	}
	next, err := t.API.Refresh(ctx, s)
	if err != nil {
		return fromCallError("refreshing at "+t.API.Profile.RefreshPath, err)
	}
	resp, err := t.API.Me(ctx, next.Access)
	if err != nil {
		return fromCallError("calling "+t.API.Profile.ProfilePath+" with the refreshed token", err)
	}
	details := map[string]any{"refreshedAccess": next.Access.String(), "status": resp.Status}
	if resp.Status != http.StatusOK {
		return failed(fmt.Sprintf("refresh gave a token that %s refused: HTTP %d %s", t.API.Profile.ProfilePath, resp.Status, resp.Body), details)
	}
	return passed(fmt.Sprintf("refresh gave access token %s, which %s accepted", next.Access, t.API.Profile.ProfilePath), details)
}
