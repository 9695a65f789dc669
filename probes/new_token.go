package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/valine/valine-check/internal/secret"
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
// it): the rotation has reached the instance that issued it. It judges the
// login's token first and, when that one is not yet signed as expected, logs
// in anew (so each retry while the rotation propagates sees a fresh token).
// Its passing session is handed to the checks ordered after it, so they work
// with a token signed with the new secret.
func NewSecretInUse(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if cfg.OldSecret.IsEmpty() && cfg.CurrentSecret.IsEmpty() {
		return skipped("neither the old nor the current secret was given, so the signer of a fresh token cannot be told")
	}
	if sameSecrets(cfg) {
		return errored(fmt.Sprintf("the old and the current secret are the same (%s): nothing was rotated, or an input is wrong", cfg.OldSecret), nil)
	}
	if t.Session != nil && !t.Session.Access.IsEmpty() && signerProblem(t.Session.Access, cfg) == "" {
		return signedAsExpected(*t.Session, cfg)
	}
	s, err := t.API.Login(ctx, cfg.ProbeEmail, cfg.ProbePassword)
	if err != nil {
		return fromCallError("fresh login", err)
	}
	if problem := signerProblem(s.Access, cfg); problem != "" {
		return failed(problem, signerDetails(s, cfg))
	}
	return signedAsExpected(s, cfg)
}

// signerProblem says what is wrong with a fresh token's signer, or "".
func signerProblem(tok secret.Token, cfg Config) string {
	if !cfg.OldSecret.IsEmpty() && SignedWith(tok, cfg.OldSecret) {
		return fmt.Sprintf("a fresh token is still signed with the old secret %s: the rotation has not reached the API", cfg.OldSecret)
	}
	if !cfg.CurrentSecret.IsEmpty() && !SignedWith(tok, cfg.CurrentSecret) {
		return fmt.Sprintf("a fresh token is not signed with the current secret %s (nor with the old one): the API signs with a secret nobody expects", cfg.CurrentSecret)
	}
	return ""
}

func signerDetails(s Session, cfg Config) map[string]any {
	details := map[string]any{"token": s.Access.String()}
	if !cfg.OldSecret.IsEmpty() {
		details["oldSecret"] = cfg.OldSecret.Fingerprint()
	}
	if !cfg.CurrentSecret.IsEmpty() {
		details["currentSecret"] = cfg.CurrentSecret.Fingerprint()
	}
	return details
}

func signedAsExpected(s Session, cfg Config) Result {
	reason := fmt.Sprintf("fresh tokens are no longer signed with the old secret %s", cfg.OldSecret)
	if !cfg.CurrentSecret.IsEmpty() {
		reason = fmt.Sprintf("fresh tokens are signed with the current secret %s", cfg.CurrentSecret)
	}
	r := passed(reason, signerDetails(s, cfg))
	r.session = &s
	return r
}

// sameSecrets reports whether the old and the current secret were both given
// and are equal: an input mistake no amount of waiting fixes.
func sameSecrets(cfg Config) bool {
	return !cfg.OldSecret.IsEmpty() && cfg.OldSecret.Equal(cfg.CurrentSecret)
}
