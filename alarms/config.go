package alarms

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Thresholds are the alarms' limits. Rates are fractions of requests
// (0.05 = 5%), counts are per five-minute period.
type Thresholds struct {
	// Client4xxRate: the API's 4XX responses as a share of its requests.
	Client4xxRate float64 `json:"client4xxRate"`
	// Server5xxRate: the API's 5XX responses as a share of its requests.
	Server5xxRate float64 `json:"server5xxRate"`
	// LambdaErrors and LambdaThrottles: a function's invocations that
	// failed or were throttled; the alarm fires above the count.
	LambdaErrors    float64 `json:"lambdaErrors"`
	LambdaThrottles float64 `json:"lambdaThrottles"`
	// ProbeSuccessPercent: the probe alarm fires below it.
	ProbeSuccessPercent float64 `json:"probeSuccessPercent"`
	// JWTFailures: failed JWT verifications in one function's log.
	JWTFailures float64 `json:"jwtFailures"`
}

// DefaultThresholds are the limits used when a Config sets none.
func DefaultThresholds() Thresholds {
	return Thresholds{
		Client4xxRate:       0.05,
		Server5xxRate:       0.01,
		LambdaErrors:        0,
		LambdaThrottles:     0,
		ProbeSuccessPercent: 100,
		JWTFailures:         25,
	}
}

// Config describes one deployment's monitoring. Exactly one of APIName (a
// REST API, metrics 4XXError/5XXError by ApiName) and APIID (an HTTP API,
// metrics 4xx/5xx by ApiId) must be set.
type Config struct {
	APIName string
	APIID   string
	Stage   string
	// Functions are the fleet: each gets Errors, Throttles and JWT-failure
	// alarms and metric filters on /aws/lambda/<function>.
	Functions []string
	// Deployment names the deployment in the probe metric's dimension;
	// default "<api>-<stage>" (see DeploymentName).
	Deployment string
	// ProbeNamespace holds the probe's SuccessPercent; default DefaultProbeNamespace.
	ProbeNamespace string
	// LogsNamespace holds the metric filters' metrics; default DefaultLogsNamespace.
	LogsNamespace string
	// SNSTopicARN, when set, is every alarm's AlarmActions and OKActions.
	SNSTopicARN string
	// Prefix starts every alarm and metric filter name; everything under it
	// is managed: Plan deletes what is under it and not desired. Two
	// deployments in one account need two prefixes. Default DefaultPrefix.
	Prefix string
	// FailurePattern is the CloudWatch Logs filter pattern of a failed JWT
	// verification (the profile's LogFailurePattern).
	FailurePattern string
	// SecondaryPattern is the CloudWatch Logs filter pattern of a
	// verification that passed with the grace-period secondary secret
	// (SecondaryUsePattern of the profile). Set, every function also gets a
	// metric filter counting those lines; empty, as for a profile without a
	// secondary variable, it gets none.
	SecondaryPattern string
	// Thresholds; nil means DefaultThresholds().
	Thresholds *Thresholds
}

// ErrInvalidConfig is wrapped by every Config validation error.
var ErrInvalidConfig = errors.New("invalid alarms configuration")

// AWS limits on names.
const (
	maxAlarmName  = 255
	maxFilterName = 512
)

var (
	validPrefix = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
	validFunc   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// namespaces may hold letters, digits and . - _ / # :
	validNamespace = regexp.MustCompile(`^[A-Za-z0-9._/#:-]{1,255}$`)
	unsafeName     = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// withDefaults returns c with its optional fields filled in.
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.ProbeNamespace == "" {
		c.ProbeNamespace = DefaultProbeNamespace
	}
	if c.LogsNamespace == "" {
		c.LogsNamespace = DefaultLogsNamespace
	}
	if c.Thresholds == nil {
		t := DefaultThresholds()
		c.Thresholds = &t
	}
	return c
}

// DeploymentName is the Deployment dimension of the probe metric: the
// Deployment field, else "<API name or id>-<stage>" with characters other
// than letters, digits and . _ - replaced by "-".
func (c Config) DeploymentName() string {
	if c.Deployment != "" {
		return c.Deployment
	}
	return c.apiKey() + "-" + safe(c.Stage)
}

// apiKey is the API's name or id made safe for alarm names.
func (c Config) apiKey() string {
	if c.APIName != "" {
		return safe(c.APIName)
	}
	return safe(c.APIID)
}

// safe replaces each run of characters other than letters, digits and
// . _ - by "-", so names stay readable whatever an API is called.
func safe(s string) string {
	return strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-")
}

// Validate reports every problem with the configuration (after defaults)
// at once.
func (c Config) Validate() error { return c.validate(true) }

// ValidateSettings is Validate without the fleet: a caller checks its
// input with it before the work that chooses the functions.
func (c Config) ValidateSettings() error { return c.validate(false) }

func (c Config) validate(withFleet bool) error {
	c = c.withDefaults()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch {
	case c.APIName == "" && c.APIID == "":
		add("the API is missing: give its name (REST API) or its id (HTTP API)")
	case c.APIName != "" && c.APIID != "":
		add("give the API's name or its id, not both")
	case c.apiKey() == "":
		add("the API name %q has no letter or digit", c.APIName+c.APIID)
	}
	if c.Stage == "" {
		add("the API stage is missing")
	} else if safe(c.Stage) == "" {
		add("the stage %q has no letter or digit", c.Stage)
	}
	if withFleet && len(c.Functions) == 0 {
		add("no functions: the fleet is empty")
	}
	seen := map[string]bool{}
	for _, fn := range c.Functions {
		switch {
		case !validFunc.MatchString(fn):
			add("function %q is not a plain function name (letters, digits, - and _, at most 64)", fn)
		case seen[fn]:
			add("function %q is listed twice", fn)
		}
		seen[fn] = true
	}
	if !validPrefix.MatchString(c.Prefix) {
		add("prefix %q must start with a letter or digit and hold at most 64 letters, digits and . _ / -", c.Prefix)
	}
	for _, ns := range []struct{ name, v string }{{"probe namespace", c.ProbeNamespace}, {"logs namespace", c.LogsNamespace}} {
		if !validNamespace.MatchString(ns.v) || strings.HasPrefix(ns.v, "AWS/") {
			add("%s %q must be letters, digits and . _ / # : - and not start with AWS/", ns.name, ns.v)
		}
	}
	if c.SNSTopicARN != "" && (!strings.HasPrefix(c.SNSTopicARN, "arn:") || strings.ContainsAny(c.SNSTopicARN, " \t\n")) {
		add("SNS topic %q is not an ARN", c.SNSTopicARN)
	}
	if strings.TrimSpace(c.FailurePattern) == "" {
		add("the JWT verification failure pattern is missing (the profile's logFailurePattern)")
	} else if len(c.FailurePattern) > 1024 {
		add("the failure pattern is longer than 1024 characters")
	}
	if len(c.SecondaryPattern) > 1024 {
		add("the secondary-use pattern is longer than 1024 characters")
	}
	t := c.Thresholds
	for _, r := range []struct {
		name string
		v    float64
	}{{"4xx rate", t.Client4xxRate}, {"5xx rate", t.Server5xxRate}} {
		if r.v < 0 || r.v >= 1 {
			add("the %s threshold %v must be a fraction from 0 to below 1 (0.05 = 5%%)", r.name, r.v)
		}
	}
	for _, n := range []struct {
		name string
		v    float64
	}{{"Lambda errors", t.LambdaErrors}, {"Lambda throttles", t.LambdaThrottles}, {"JWT failures", t.JWTFailures}} {
		if n.v < 0 {
			add("the %s threshold %v must not be negative", n.name, n.v)
		}
	}
	if t.ProbeSuccessPercent <= 0 || t.ProbeSuccessPercent > 100 {
		add("the probe success threshold %v must be above 0 and at most 100", t.ProbeSuccessPercent)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return nil
}
