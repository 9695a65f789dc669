package main

import (
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/internal/profile"
)

// profileField ties one Profile field to its flag and environment variable.
type profileField struct {
	flag, env, usage string
	set              func(p *profile.Profile, v string)
}

var profileFields = []profileField{
	{"login-path", "VALINE_LOGIN_PATH", "login endpoint (POST)", func(p *profile.Profile, v string) { p.LoginPath = v }},
	{"profile-path", "VALINE_PROFILE_PATH", "profile endpoint (GET) that needs an access token", func(p *profile.Profile, v string) { p.ProfilePath = v }},
	{"refresh-path", "VALINE_REFRESH_PATH", "refresh endpoint (POST)", func(p *profile.Profile, v string) { p.RefreshPath = v }},
	{"email-field", "VALINE_EMAIL_FIELD", "login body's email field", func(p *profile.Profile, v string) { p.EmailField = v }},
	{"password-field", "VALINE_PASSWORD_FIELD", "login body's password field", func(p *profile.Profile, v string) { p.PasswordField = v }},
	{"access-transport", "VALINE_ACCESS_TRANSPORT", "how the profile endpoint takes the access token: bearer or cookie", func(p *profile.Profile, v string) { p.AccessTransport = profile.Transport(v) }},
	{"refresh-transport", "VALINE_REFRESH_TRANSPORT", "how the refresh endpoint takes the refresh token: body or cookie", func(p *profile.Profile, v string) { p.RefreshTransport = profile.Transport(v) }},
	{"access-field", "VALINE_ACCESS_FIELD", "JSON field carrying the access token", func(p *profile.Profile, v string) { p.AccessField = v }},
	{"refresh-field", "VALINE_REFRESH_FIELD", "JSON field carrying the refresh token", func(p *profile.Profile, v string) { p.RefreshField = v }},
	{"access-cookie", "VALINE_ACCESS_COOKIE", "cookie carrying the access token", func(p *profile.Profile, v string) { p.AccessCookie = v }},
	{"refresh-cookie", "VALINE_REFRESH_COOKIE", "cookie carrying the refresh token", func(p *profile.Profile, v string) { p.RefreshCookie = v }},
	{"reject-body", "VALINE_REJECT_BODY", "substring a rejection's body must contain (optional)", func(p *profile.Profile, v string) { p.RejectBody = v }},
	{"secret-var", "VALINE_SECRET_VAR", "Lambda variable holding the primary secret", func(p *profile.Profile, v string) { p.SecretVar = v }},
	{"secondary-var", "VALINE_SECONDARY_VAR", "Lambda variable holding the grace-period secondary secret", func(p *profile.Profile, v string) { p.SecondaryVar = v }},
	{"log-failure-pattern", "VALINE_LOG_FAILURE_PATTERN", "CloudWatch Logs filter pattern of a failed JWT verification", func(p *profile.Profile, v string) { p.LogFailurePattern = v }},
	{"log-verification-pattern", "VALINE_LOG_VERIFICATION_PATTERN", "CloudWatch Logs filter pattern of any JWT verification line", func(p *profile.Profile, v string) { p.LogVerificationPattern = v }},
}

const profileCategory = "Deployment profile"

// profileFlags is the shared flag group that chooses and overrides a profile.
func profileFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "profile", Value: "runbook", EnvVars: []string{"VALINE_PROFILE"}, Category: profileCategory,
			Usage: "built-in deployment profile: " + strings.Join(profile.PresetNames(), ", ")},
		&cli.PathFlag{Name: "profile-file", EnvVars: []string{"VALINE_PROFILE_FILE"}, Category: profileCategory,
			Usage: "YAML or JSON file with a preset and field overrides (flags override it)"},
		&cli.IntFlag{Name: "reject-status", EnvVars: []string{"VALINE_REJECT_STATUS"}, Category: profileCategory,
			Usage: "HTTP status that means a token was rejected (default from the profile: 401)"},
	}
	for _, f := range profileFields {
		flags = append(flags, &cli.StringFlag{Name: f.flag, EnvVars: []string{f.env}, Usage: f.usage, Category: profileCategory})
	}
	return flags
}

// resolveProfile builds the profile: preset, then the file, then flags.
func resolveProfile(cCtx *cli.Context) (profile.Profile, error) {
	preset := cCtx.String("profile")
	var layers []profile.Profile
	if path := cCtx.Path("profile-file"); path != "" {
		pf, err := profile.LoadFile(path)
		if err != nil {
			return profile.Profile{}, usageError(cCtx, "%v", err)
		}
		if pf.Preset != "" && !cCtx.IsSet("profile") {
			preset = pf.Preset
		}
		layers = append(layers, pf.Profile)
	}
	var fromFlags profile.Profile
	for _, f := range profileFields {
		if cCtx.IsSet(f.flag) {
			f.set(&fromFlags, cCtx.String(f.flag))
		}
	}
	if cCtx.IsSet("reject-status") {
		fromFlags.RejectStatus = cCtx.Int("reject-status")
	}
	layers = append(layers, fromFlags)
	p, err := profile.Resolve(preset, layers...)
	if err != nil {
		return profile.Profile{}, usageError(cCtx, "%v", err)
	}
	return p, nil
}
