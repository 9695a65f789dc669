package probes

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// logTime prints window bounds to the millisecond: a window often spans seconds.
const logTime = "2006-01-02T15:04:05.000Z07:00"

// NoLogErrors checks the function's log group for failed JWT verifications
// between cfg.LogsSince and cfg.LogsUntil, with the profile's filter
// patterns, reading every page. Silence is not health: when the window
// holds no verification line at all, it warns that it cannot see failures.
//
// The probe causes failures on purpose (old tokens in strict mode, the
// security battery, the proof of a secondary). Two mechanisms leave them
// out. By time, which holds on any backend: each request the probes sent
// expecting a refusal (Target.Deliberate) accounts for at most one failure
// line stamped while it was in flight. By User-Agent, where the API logs
// it: lines of any probe run (DeliberatePrefix), this run's, an earlier
// rotation's or the scheduled probe's. A client could claim that
// User-Agent, but such lines are not a real user's failure, which is what
// this check is for. On a backend that logs no User-Agent, earlier runs'
// rejections are counted: start the window after them (--since).
func NoLogErrors(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
	if t.Function == "" || t.Logs == nil {
		return skipped("no Lambda function given (VALINE_FUNCTION), so its logs cannot be read")
	}
	if cfg.LogsSince.IsZero() {
		return skipped("no start time given for the log window (--since)")
	}
	until := cfg.LogsUntil
	if until.IsZero() {
		until = cfg.now()
	}
	group := profile.LogGroup(t.Function)
	window := fmt.Sprintf("%s between %s and %s", group, cfg.LogsSince.UTC().Format(logTime), until.UTC().Format(logTime))
	p := t.API.Profile

	failures, err := filterEvents(ctx, t.Logs, group, p.LogFailurePattern, cfg.LogsSince, until, false)
	if err != nil {
		return errored("reading "+window+": "+err.Error(), nil)
	}
	verifications, err := filterEvents(ctx, t.Logs, group, p.LogVerificationPattern, cfg.LogsSince, until, true)
	if err != nil {
		return errored("reading "+window+": "+err.Error(), nil)
	}
	failures, deliberate := withoutDeliberate(failures, DeliberatePrefix, spansWithin(t.Deliberate.Spans(), cfg.LogsSince, until))
	details := map[string]any{"logGroup": group, "since": cfg.LogsSince.UTC().Format(logTime),
		"until": until.UTC().Format(logTime), "failures": len(failures), "probeRejectionsIgnored": deliberate}
	if len(failures) > 0 {
		reasons := failureReasons(failures)
		details["reasons"] = reasons
		details["sample"] = sample(failures, 3, t.API.knownSecrets(cfg))
		return failed(fmt.Sprintf("%d failed JWT verification(s) in %s (%s)", len(failures), window, summarizeReasons(reasons)), details)
	}
	if len(verifications) == 0 {
		return warned(fmt.Sprintf("BLIND: no JWT verification lines at all in %s: this check cannot see failures (is the function logging verifications? does the profile's logVerificationPattern %q match them?)", window, p.LogVerificationPattern), details)
	}
	ignored := ""
	if deliberate > 0 {
		ignored = fmt.Sprintf(" (%d deliberate rejections by the probe not counted)", deliberate)
	}
	return passed(fmt.Sprintf("no failed JWT verifications in %s, and the log shows verifications happening%s", window, ignored), details)
}

// logEvent is one matching log line and its timestamp.
type logEvent struct {
	msg string
	at  time.Time
}

// filterEvents returns the events matching pattern, following NextToken to
// the end (FilterLogEvents may answer pages with no events while it scans;
// only a missing token ends the listing). With first, it stops at the
// first match: the caller asks only whether there is one.
func filterEvents(ctx context.Context, logs LogsAPI, group, pattern string, since, until time.Time, first bool) ([]logEvent, error) {
	in := &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:  aws.String(group),
		FilterPattern: aws.String(pattern),
		// Events carry whole milliseconds and both bounds are inclusive. The
		// window starts at the first whole millisecond at or after since and
		// ends before the millisecond holding until, so a line written in a
		// boundary millisecond (by the step before, or by this run's own
		// deliberate rejections) is never counted.
		StartTime: aws.Int64(ceilMilli(since)),
		EndTime:   aws.Int64(until.UnixMilli() - 1),
	}
	if first {
		in.Limit = aws.Int32(1)
	}
	var events []logEvent
	for {
		out, err := logs.FilterLogEvents(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("filtering log events: %w", err)
		}
		for _, e := range out.Events {
			events = append(events, logEvent{msg: aws.ToString(e.Message), at: time.UnixMilli(aws.ToInt64(e.Timestamp))})
		}
		next := aws.ToString(out.NextToken)
		if next == "" || (first && len(events) > 0) {
			return events, nil
		}
		if in.NextToken != nil && *in.NextToken == next {
			return nil, fmt.Errorf("filtering log events: the listing repeats its page token")
		}
		in.NextToken = aws.String(next)
	}
}

var reasonField = regexp.MustCompile(`reason="([^"]*)"`)

// failureReasons counts failures by their reason="..." field, where the log
// line has one.
func failureReasons(events []logEvent) map[string]int {
	counts := map[string]int{}
	for _, e := range events {
		reason := "unstated"
		if sub := reasonField.FindStringSubmatch(e.msg); sub != nil {
			reason = sub[1]
		}
		counts[reason]++
	}
	return counts
}

func summarizeReasons(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return counts[keys[i]] > counts[keys[j]] || (counts[keys[i]] == counts[keys[j]] && keys[i] < keys[j])
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

// sample returns up to n messages with the known secrets and JWT-shaped
// strings redacted: a log line written by a careless API must not carry a
// secret or a token into the report.
func sample(events []logEvent, n int, red *secret.Redactor) []string {
	out := make([]string, 0, n)
	for _, e := range events {
		if len(out) == n {
			break
		}
		out = append(out, safeResponse(0, []byte(red.Redact(e.msg))).Body)
	}
	return out
}

// ceilMilli is t in Unix milliseconds, rounded up.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// spansWithin keeps the deliberate requests that began and ended inside
// the window's whole milliseconds: only their refusals are surely in the
// window, and a span whose line fell outside must not take a real one.
func spansWithin(spans []Span, since, until time.Time) []Span {
	first, last := time.UnixMilli(ceilMilli(since)), time.UnixMilli(until.UnixMilli())
	var in []Span
	for _, sp := range spans {
		if !sp.Start.Before(first) && sp.End.Before(last) {
			in = append(in, sp)
		}
	}
	return in
}
