// Package testbed starts the local world used by tests, the sandbox command
// and benchmarks: an in-process AWS emulator (kumo) behind a small front
// handler that fills the gaps the project needs, and a reference Valine auth
// API that reads its JWT secrets from an emulated Lambda function's
// configuration and writes its verification log lines into that function's
// emulated CloudWatch Logs group.
//
// A rotation done through the Lambda API therefore takes effect in the API
// the way it does in production: after the API next re-reads the function
// configuration (Options.PropagationDelay).
//
// Gaps in kumo v0.33.1 that Front fills (see Front for details):
//   - Lambda RevisionId: kumo never sets nor enforces it. Front keeps one per
//     function, adds it to every response that carries a function
//     configuration and answers a stale RevisionId with 412
//     PreconditionFailedException.
//   - Concurrency: kumo serialises a function's configuration without its
//     lock; Front serialises writes to one function against reads of it.
//   - ListFunctions paging: kumo builds each page from a Go map, in an order
//     that changes from call to call, so the SDK paginator following its
//     NextMarker loses and repeats functions (85 of 300 listings of 70
//     functions missed some). Front takes kumo's whole list in one answer
//     and serves it in name order, min(MaxItems, 50) a page as AWS does,
//     with an opaque NextMarker; MaxItems outside 1-10000 or a foreign
//     marker is InvalidParameterValueException.
//   - Logs Insights (StartQuery, GetQueryResults, StopQuery): a test double
//     computing the project's query shapes (filter @message like /RE/, an
//     optional parse, stats count(*) by bin or by a parsed field) from the
//     events stored in kumo; any other shape is MalformedQueryException. A
//     query stays Running for a set number of polls
//     (Front.SetInsightsPollsUntilComplete) and the account's concurrency
//     limit can be set (Front.SetInsightsConcurrencyLimit). See
//     insightsFront for its limits.
//   - Secrets Manager TagResource/UntagResource (the rotation journal), and
//     the AWSPREVIOUS stage, which kumo leaves on stale versions
//     (secretsmanager_front.go).
//   - CloudWatch alarms: the fields kumo's PutMetricAlarm drops
//     (TreatMissingData, DatapointsToAlarm, …) and DescribeAlarms paging
//     (cloudwatch_front.go); PutMetricData with a Timestamp or a gzipped
//     body, and GetMetricStatistics by Period (cloudwatch_metrics.go).
//   - CloudWatch Logs metric filters (PutMetricFilter, DescribeMetricFilters,
//     DeleteMetricFilter) for plain-text patterns (metric_filters.go).
//   - Test doubles for what the emulator never does: World.EvaluateAlarms
//     sets alarm states from stored metric data, World.RunMetricFilters
//     turns matching log events into metric data (alarm_eval.go).
//   - Fault injection and latency, which kumo does not offer.
//
// Gaps not filled here, which callers must avoid: FilterLogEvents matches a
// plain substring (so pass patterns unquoted); alarms change state only
// through EvaluateAlarms; storage is global to the process, which is why
// every World uses random names.
package testbed
