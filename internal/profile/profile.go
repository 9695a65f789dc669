// Package profile is the vocabulary of deployment profiles: the shape of
// one Valine deployment's auth API and where its secret lives, as data
// with built-in presets and overrides. It imports nothing of the project.
package profile

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Transport says where a token travels: in a JSON body, in an
// "Authorization: Bearer" header, or in a cookie.
type Transport string

// The transports a profile can name.
const (
	TransportBody   Transport = "body"
	TransportBearer Transport = "bearer"
	TransportCookie Transport = "cookie"
)

// Profile describes one Valine deployment's auth API and where its secret
// lives. Nothing else in the project assumes a deployment's shape: paths,
// field and cookie names, transports, variable names and the status that means
// "rejected" all come from here. Build one with ResolveProfile.
type Profile struct {
	// Name is the preset the profile started from ("runbook", "cookie") or "custom".
	Name string `yaml:"name" json:"name"`

	// LoginPath is POSTed a JSON object {EmailField: ..., PasswordField: ...}.
	LoginPath     string `yaml:"loginPath" json:"loginPath"`
	EmailField    string `yaml:"emailField" json:"emailField"`
	PasswordField string `yaml:"passwordField" json:"passwordField"`

	// ProfilePath is fetched with GET and the access token in AccessTransport.
	ProfilePath string `yaml:"profilePath" json:"profilePath"`
	// AccessTransport is how the profile endpoint receives the access token: bearer or cookie.
	AccessTransport Transport `yaml:"accessTransport" json:"accessTransport"`

	// RefreshPath is POSTed the refresh token in RefreshTransport: body ({RefreshField: token}) or cookie.
	RefreshPath      string    `yaml:"refreshPath" json:"refreshPath"`
	RefreshTransport Transport `yaml:"refreshTransport" json:"refreshTransport"`

	// AccessField and RefreshField name the tokens in JSON bodies (login and refresh responses, refresh request).
	AccessField  string `yaml:"accessField" json:"accessField"`
	RefreshField string `yaml:"refreshField" json:"refreshField"`
	// AccessCookie and RefreshCookie name the cookies that carry the tokens, when the deployment sets any.
	AccessCookie  string `yaml:"accessCookie" json:"accessCookie"`
	RefreshCookie string `yaml:"refreshCookie" json:"refreshCookie"`

	// RejectStatus is the HTTP status that means "token rejected".
	RejectStatus int `yaml:"rejectStatus" json:"rejectStatus"`
	// RejectBody, when set, must also appear in a rejection's body (a substring).
	RejectBody string `yaml:"rejectBody" json:"rejectBody"`

	// SecretVar and SecondaryVar name the Lambda environment variables holding
	// the primary and the grace-period secondary secret. An empty SecondaryVar
	// means the deployment cannot verify with two secrets.
	SecretVar    string `yaml:"secretVar" json:"secretVar"`
	SecondaryVar string `yaml:"secondaryVar" json:"secondaryVar"`

	// LogFailurePattern is a CloudWatch Logs filter pattern matching a failed
	// JWT verification; LogVerificationPattern matches every verification line,
	// failed or not, so that silence can be told from health.
	LogFailurePattern      string `yaml:"logFailurePattern" json:"logFailurePattern"`
	LogVerificationPattern string `yaml:"logVerificationPattern" json:"logVerificationPattern"`
}

// Presets are the built-in deployment profiles, by name.
var Presets = map[string]Profile{
	"runbook": {
		Name:                   "runbook",
		LoginPath:              "/auth/login",
		EmailField:             "email",
		PasswordField:          "password",
		ProfilePath:            "/profile/me",
		AccessTransport:        TransportBearer,
		RefreshPath:            "/auth/refresh",
		RefreshTransport:       TransportBody,
		AccessField:            "accessToken",
		RefreshField:           "refreshToken",
		RejectStatus:           401,
		SecretVar:              "AUTH_JWT_SECRET",
		SecondaryVar:           "AUTH_JWT_SECRET_SECONDARY",
		LogFailurePattern:      "JWT verification failed",
		LogVerificationPattern: "JWT verification",
	},
	"cookie": {
		Name:                   "cookie",
		LoginPath:              "/auth/login",
		EmailField:             "email",
		PasswordField:          "password",
		ProfilePath:            "/auth/me",
		AccessTransport:        TransportCookie,
		RefreshPath:            "/auth/refresh",
		RefreshTransport:       TransportCookie,
		AccessField:            "accessToken",
		AccessCookie:           "access_token",
		RefreshCookie:          "refresh_token",
		RejectStatus:           401,
		SecretVar:              "JWT_SECRET",
		LogFailurePattern:      "JWT verification failed",
		LogVerificationPattern: "JWT verification",
	},
	// valine is the real Project Valine backend (its serverless/ stack), as
	// observed: cookies for both tokens (the refresh token only in its
	// cookie), GET /auth/me, one secret variable JWT_SECRET and no
	// secondary, and no JWT log lines at all. A refused token shows only as
	// the WARN event me_no_token (the same event as a missing token); the
	// INFO event me_token_found, logged wherever a token was presented, is
	// taken as the sign that verifications happen. If a deployment words
	// its INFO lines differently, override logVerificationPattern: the log
	// check then says it is blind rather than passing on silence.
	"valine": {
		Name:                   "valine",
		LoginPath:              "/auth/login",
		EmailField:             "email",
		PasswordField:          "password",
		ProfilePath:            "/auth/me",
		AccessTransport:        TransportCookie,
		RefreshPath:            "/auth/refresh",
		RefreshTransport:       TransportCookie,
		AccessField:            "accessToken",
		AccessCookie:           "access_token",
		RefreshCookie:          "refresh_token",
		RejectStatus:           401,
		SecretVar:              "JWT_SECRET",
		LogFailurePattern:      "me_no_token",
		LogVerificationPattern: "me_token_found",
	},
}

// PresetNames lists the preset names in a stable order, for help text and errors.
func PresetNames() []string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrInvalidProfile is wrapped by every profile validation error.
var ErrInvalid = errors.New("invalid deployment profile")

// ResolveProfile builds a profile: the named preset (default "runbook"), then
// each layer of overrides in order (a config file's, then flags'), where a
// layer's zero fields leave the value below untouched. The result is validated.
func Resolve(preset string, overrides ...Profile) (Profile, error) {
	if preset == "" {
		preset = "runbook"
	}
	base, ok := Presets[preset]
	if !ok {
		return Profile{}, fmt.Errorf("%w: unknown preset %q (known: %s)", ErrInvalid, preset, strings.Join(PresetNames(), ", "))
	}
	p := base
	for _, o := range overrides {
		p = p.with(o)
	}
	if p != base {
		p.Name = preset + "+overrides"
	}
	return p, p.Validate()
}

// with returns p with every non-zero field of o applied over it.
func (p Profile) with(o Profile) Profile {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&p.LoginPath, o.LoginPath)
	set(&p.EmailField, o.EmailField)
	set(&p.PasswordField, o.PasswordField)
	set(&p.ProfilePath, o.ProfilePath)
	set(&p.RefreshPath, o.RefreshPath)
	set(&p.AccessField, o.AccessField)
	set(&p.RefreshField, o.RefreshField)
	set(&p.AccessCookie, o.AccessCookie)
	set(&p.RefreshCookie, o.RefreshCookie)
	set(&p.RejectBody, o.RejectBody)
	set(&p.SecretVar, o.SecretVar)
	set(&p.SecondaryVar, o.SecondaryVar)
	set(&p.LogFailurePattern, o.LogFailurePattern)
	set(&p.LogVerificationPattern, o.LogVerificationPattern)
	if o.AccessTransport != "" {
		p.AccessTransport = o.AccessTransport
	}
	if o.RefreshTransport != "" {
		p.RefreshTransport = o.RefreshTransport
	}
	if o.RejectStatus != 0 {
		p.RejectStatus = o.RejectStatus
	}
	return p
}

// OwnSecretVar reports whether SecretVar is the one of the preset the
// profile started from: a variable chosen by override (--secret-var) must
// hold something that looks like a signing secret before rotation writes
// over it.
func (p Profile) OwnSecretVar() bool {
	base, _, _ := strings.Cut(p.Name, "+")
	preset, ok := Presets[base]
	return ok && preset.SecretVar == p.SecretVar
}

// Validate reports every problem with the profile at once.
func (p Profile) Validate() error {
	var problems []string
	for _, f := range []struct{ name, path string }{
		{"loginPath", p.LoginPath}, {"profilePath", p.ProfilePath}, {"refreshPath", p.RefreshPath},
	} {
		if !strings.HasPrefix(f.path, "/") {
			problems = append(problems, fmt.Sprintf("%s %q must start with /", f.name, f.path))
		}
	}
	if p.EmailField == "" || p.PasswordField == "" {
		problems = append(problems, "emailField and passwordField must be set")
	}
	switch p.AccessTransport {
	case TransportBearer:
	case TransportCookie:
		if p.AccessCookie == "" {
			problems = append(problems, "accessTransport cookie needs accessCookie")
		}
	default:
		problems = append(problems, fmt.Sprintf("accessTransport %q must be bearer or cookie", p.AccessTransport))
	}
	switch p.RefreshTransport {
	case TransportBody:
		if p.RefreshField == "" {
			problems = append(problems, "refreshTransport body needs refreshField")
		}
	case TransportCookie:
		if p.RefreshCookie == "" {
			problems = append(problems, "refreshTransport cookie needs refreshCookie")
		}
	default:
		problems = append(problems, fmt.Sprintf("refreshTransport %q must be body or cookie", p.RefreshTransport))
	}
	if p.AccessField == "" && p.AccessCookie == "" {
		problems = append(problems, "one of accessField or accessCookie must be set")
	}
	if p.RejectStatus < 400 || p.RejectStatus > 499 {
		problems = append(problems, fmt.Sprintf("rejectStatus %d must be a 4xx status", p.RejectStatus))
	}
	if p.SecretVar == "" {
		problems = append(problems, "secretVar must be set")
	}
	if p.SecondaryVar != "" && p.SecondaryVar == p.SecretVar {
		problems = append(problems, "secondaryVar must differ from secretVar")
	}
	if p.LogFailurePattern == "" || p.LogVerificationPattern == "" {
		problems = append(problems, "logFailurePattern and logVerificationPattern must be set")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// ProfileFile is the shape of a profile config file (YAML or JSON): a preset
// to start from and field overrides.
//
//	preset: cookie
//	profilePath: /api/auth/me
//	rejectStatus: 403
type File struct {
	Preset  string `yaml:"preset"`
	Profile `yaml:",inline"`
}

// LoadProfileFile reads a profile config file. Unknown keys are an error, so a
// typo cannot silently leave a default in place.
func LoadFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer f.Close()
	var pf File
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&pf); err != nil {
		return File{}, fmt.Errorf("%w: reading %s: %w", ErrInvalid, path, err)
	}
	return pf, nil
}
