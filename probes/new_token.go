package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// NewTokenValid checks that the profile endpoint accepts the access token the
// login just issued.
func NewTokenValid(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	s, skip := needSession(t)
	if skip != nil {
		return *skip
	}
	resp, err := t.API.Me(ctx, s.Access)
	if err != nil {
		return fromCallError("calling "+t.API.Profile.ProfilePath, err)
	}
	details := map[string]any{"status": resp.Status, "path": t.API.Profile.ProfilePath}
	if resp.Status != http.StatusOK {
		return failed(fmt.Sprintf("%s refused a token the API issued moments ago: HTTP %d %s", t.API.Profile.ProfilePath, resp.Status, resp.Body), details)
	}
	return passed(fmt.Sprintf("%s accepted the fresh access token (HTTP 200)", t.API.Profile.ProfilePath), details)
}

// NewSecretInUse checks that a freshly issued token is not signed with the
// old secret (and, when the current secret is known, that it is signed with
// it): the rotation has reached the instance that issued it. It logs in anew
// on each attempt, because it waits for propagation, and hands its fresh
// session to the checks that need a token signed with the new secret.
func NewSecretInUse(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if cfg.OldSecret.IsEmpty() && cfg.CurrentSecret.IsEmpty() {
		return skipped("neither the old nor the current secret was given, so the signer of a fresh token cannot be told")
	}
	s, err := t.API.Login(ctx, cfg.ProbeEmail, cfg.ProbePassword)
	if err != nil {
		return fromCallError("fresh login", err)
	}
	details := map[string]any{"token": s.Access.String()}
	if !cfg.OldSecret.IsEmpty() {
		details["oldSecret"] = cfg.OldSecret.Fingerprint()
		if SignedWith(s.Access, cfg.OldSecret) {
			return failed(fmt.Sprintf("a fresh token is still signed with the old secret %s: the rotation has not reached the API", cfg.OldSecret), details)
		}
	}
	if !cfg.CurrentSecret.IsEmpty() {
		details["currentSecret"] = cfg.CurrentSecret.Fingerprint()
		if !SignedWith(s.Access, cfg.CurrentSecret) {
			return failed(fmt.Sprintf("a fresh token is not signed with the current secret %s (nor with the old one): the API signs with a secret nobody expects", cfg.CurrentSecret), details)
		}
		r := passed(fmt.Sprintf("fresh tokens are signed with the current secret %s", cfg.CurrentSecret), details)
		r.session = &s
		return r
	}
	r := passed(fmt.Sprintf("fresh tokens are no longer signed with the old secret %s", cfg.OldSecret), details)
	r.session = &s
	return r
}
