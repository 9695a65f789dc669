package alarms

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/valine/valine-check/internal/profile"
)

// The names of the queries Queries builds. Compare reasons about the results
// of these names.
const (
	QueryJWTFailures  = "jwt-failures"
	QuerySecondaryUse = "secondary-use"
	QueryUnauthorized = "unauthorized"
	QueryErrors       = "errors"
	// QueryVerifications counts every verification line: zero means the
	// other queries could not have matched anything (the comparison and
	// status then say they are blind).
	QueryVerifications = "verifications"
	// QueryProbeRefusals counts the failed verification lines that carry
	// the probe's deliberate marker (built only with ExcludeDeliberate):
	// none while the probe refused tokens on purpose means the API logs no
	// User-Agent, so the other counts include the probe's refusals.
	QueryProbeRefusals = "probe-refusals"
)

// binField is the bin of the queries that count by time: the runbook's
// 5 minutes.
const binField = "bin(5m)"

// secondaryMarker is what a verification line says when the token matched
// the grace-period secondary secret. The reference API logs
// "JWT verification ok secret=secondary ..."; a deployment that does not say
// which secret verified cannot be watched for secondary use.
const secondaryMarker = "secret=secondary"

// errorPattern matches the lines the Lambda runtimes write for a failed
// invocation: console.error and the runtime's ERROR lines, and timeouts.
const errorPattern = `ERROR|Task timed out`

// Query is a named Logs Insights query. Every query Queries builds has one
// of a few regular shapes, so the testbed can compute it:
//
//	filter @message like /RE/ [and @message [not] like /RE/ ...]
//	  [| parse @message /(?<name>RE)/]
//	  | stats count(*) as FIELD [by bin(5m) | by name]
type Query struct {
	// Name is short and stable ("jwt-failures"): the CLI and Compare use it.
	Name string `json:"name"`
	// Description says what the count means, and its limits.
	Description string `json:"description"`
	// String is the query in the Logs Insights language.
	String string `json:"query"`
	// Field is the counted column, such as "failures".
	Field string `json:"field"`
}

// QueryOption changes the queries Queries builds.
type QueryOption func(*queryOptions)

type queryOptions struct{ deliberate string }

// ExcludeDeliberate leaves out of the counts (jwt-failures, unauthorized,
// secondary-use) the lines whose User-Agent starts with marker, normally
// probes.DeliberatePrefix: every probe run's deliberate requests (a
// rotation's verification, the scheduled probe), so the probe's own old
// and forged tokens are not counted as users' failures, nor, while a
// rotation propagates, as secondary-secret use. It works where the API
// logs the User-Agent as "ua=..." on its verification lines, as the
// reference API does. An empty marker changes nothing.
func ExcludeDeliberate(marker string) QueryOption {
	return func(o *queryOptions) { o.deliberate = marker }
}

// Queries returns the named queries for a deployment, built from the
// profile's log patterns:
//
//   - jwt-failures: failed JWT verifications (LogFailurePattern) by 5-minute bin.
//   - secondary-use: verifications (LogVerificationPattern) that matched the
//     secondary secret ("secret=secondary" on the line), by 5-minute bin: when
//     it stays at zero, the grace period can end.
//   - unauthorized: requests refused for a bad or missing token, by path.
//     The API's response status is not in its log; this counts the failed
//     verification lines, each of which the API answers with its
//     RejectStatus (401), by their "path=" field. A 401 given without a
//     verification line (a wrong password at login) is not counted; API
//     Gateway's 4XXError alarm sees every one.
//   - errors: the runtime's ERROR and "Task timed out" lines, by 5-minute bin.
//   - verifications: every verification line, by 5-minute bin (silence is
//     not health: zero means the others could not see anything).
//   - probe-refusals, with ExcludeDeliberate: the probe's marked refusals.
//
// A profile pattern that is a JSON or space-delimited filter pattern
// ("{...}" or "[...]") cannot be turned into a regular expression; the
// reference API's phrase is used instead.
func Queries(p profile.Profile, opts ...QueryOption) []Query {
	var o queryOptions
	for _, opt := range opts {
		opt(&o)
	}
	failure := patternRegex(p.LogFailurePattern, "JWT verification failed")
	verification := patternRegex(p.LogVerificationPattern, "JWT verification")
	exclude := ""
	if o.deliberate != "" {
		exclude = " and @message not like /ua=" + quoteRegex(o.deliberate) + "/"
	}
	qs := []Query{
		{
			Name:        QueryJWTFailures,
			Description: "failed JWT verifications by 5-minute bin",
			String:      fmt.Sprintf("filter @message like /%s/%s | stats count(*) as failures by %s", failure, exclude, binField),
			Field:       "failures",
		},
		{
			Name:        QuerySecondaryUse,
			Description: "verifications that matched the secondary secret, by 5-minute bin (zero for the whole grace period: it can end)",
			String: fmt.Sprintf("filter @message like /%s/ and @message like /%s/%s | stats count(*) as secondaryUses by %s",
				verification, quoteRegex(secondaryMarker), exclude, binField),
			Field: "secondaryUses",
		},
		{
			Name: QueryUnauthorized,
			Description: "requests refused for a bad or missing token (the API's 401s), by path; counted from failed verification lines, " +
				"so a 401 for a wrong password is not included",
			String: fmt.Sprintf(`filter @message like /%s/%s | parse @message /path=(?<path>\S+)/ | stats count(*) as unauthorized by path`,
				failure, exclude),
			Field: "unauthorized",
		},
		{
			Name:        QueryErrors,
			Description: "function errors and timeouts (ERROR and \"Task timed out\" lines) by 5-minute bin",
			String:      fmt.Sprintf("filter @message like /%s/ | stats count(*) as errors by %s", errorPattern, binField),
			Field:       "errors",
		},
		{
			Name:        QueryVerifications,
			Description: "verification lines of any outcome, by 5-minute bin: zero means the log shows nothing the other queries could match",
			String:      fmt.Sprintf("filter @message like /%s/ | stats count(*) as verifications by %s", verification, binField),
			Field:       "verifications",
		},
	}
	if o.deliberate != "" {
		qs = append(qs, Query{
			Name:        QueryProbeRefusals,
			Description: "the probe's own deliberate refusals (failed verifications with its marker as User-Agent), by 5-minute bin: zero while it refused tokens means the API logs no User-Agent",
			String: fmt.Sprintf("filter @message like /%s/ and @message like /ua=%s/ | stats count(*) as probeRefusals by %s",
				failure, quoteRegex(o.deliberate), binField),
			Field: "probeRefusals",
		})
	}
	return qs
}

// FindQuery returns the query named name.
func FindQuery(qs []Query, name string) (Query, bool) {
	i := slices.IndexFunc(qs, func(q Query) bool { return q.Name == name })
	if i < 0 {
		return Query{}, false
	}
	return qs[i], true
}

// QueryNames lists the queries' names, in order.
func QueryNames(qs []Query) []string {
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return names
}

// SecondaryUsePattern is the CloudWatch Logs filter pattern of the lines
// the secondary-use query counts: a verification line (the profile's
// LogVerificationPattern, read as a phrase as the queries read it) that
// says the secondary secret passed the token, as the reference API writes
// it: "JWT verification ok secret=secondary sub=… path=… ua=…". Both are
// quoted terms: CloudWatch requires quotes around a term holding anything
// but letters, digits and _ (the marker's "="), and a quoted term matches
// as the exact phrase, where unquoted words would match anywhere in the
// line in any order. A failed verification ("JWT verification failed
// reason=…") and one by the primary ("secret=primary") do not match. It is
// "" for a profile without a secondary variable: there is no grace period,
// so nothing to count.
func SecondaryUsePattern(p profile.Profile) string {
	if p.SecondaryVar == "" {
		return ""
	}
	return quoteTerm(patternPhrase(p.LogVerificationPattern, "JWT verification")) + " " + quoteTerm(secondaryMarker)
}

// patternRegex turns a CloudWatch Logs filter pattern into the regular
// expression of an Insights "like /.../" (see patternPhrase).
func patternRegex(pattern, fallback string) string {
	return quoteRegex(patternPhrase(pattern, fallback))
}

// patternPhrase reads a CloudWatch Logs filter pattern as the literal
// phrase it matches: a quoted or plain phrase as it is (a plain multi-word
// pattern, which a filter matches as terms in any order, is read as the
// phrase, which is how the API writes it); a JSON or space-delimited
// pattern, which names no phrase, as fallback.
func patternPhrase(pattern, fallback string) string {
	p := strings.TrimSpace(pattern)
	if p == "" || strings.HasPrefix(p, "{") || strings.HasPrefix(p, "[") {
		p = fallback
	}
	if len(p) >= 2 && strings.HasPrefix(p, `"`) && strings.HasSuffix(p, `"`) {
		p = p[1 : len(p)-1]
	}
	return p
}

// quoteTerm makes s one quoted term of a filter pattern, its quotes and
// backslashes escaped.
func quoteTerm(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// quoteRegex quotes s for use between the slashes of an Insights regex.
func quoteRegex(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), "/", `\/`)
}
