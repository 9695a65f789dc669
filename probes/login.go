package probes

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Login checks that the probe user's credentials give an access token (from
// the body or a cookie, per profile). Its session feeds the checks that need one.
func Login(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if cfg.ProbeEmail == "" || cfg.ProbePassword.IsEmpty() {
		return errored("no probe credentials: set the probe user's email and password", nil)
	}
	s, err := t.API.Login(ctx, cfg.ProbeEmail, cfg.ProbePassword)
	if err != nil {
		log.Debug("login failed", "email", cfg.ProbeEmail, "err", err)
		return fromCallError("logging in as "+cfg.ProbeEmail, err)
	}
	details := map[string]any{"access": s.Access.String(), "refreshIssued": !s.Refresh.IsEmpty()}
	if in, err := Inspect(s.Access, cfg.now()); err == nil {
		details["algorithm"] = in.Algorithm
		if in.ExpiresAt != nil {
			details["expiresAt"] = in.ExpiresAt.Format(time.RFC3339)
		}
	}
	r := passed(fmt.Sprintf("logged in as %s and got access token %s", cfg.ProbeEmail, s.Access), details)
	r.session = &s
	return r
}
