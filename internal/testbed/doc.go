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
//   - Fault injection and latency, which kumo does not offer.
//
// Gaps not filled here, which callers must avoid: no Logs Insights and no
// metric filters; FilterLogEvents matches a plain substring (so pass
// patterns unquoted); alarms are never evaluated; storage is global to the
// process, which is why every World uses random names.
package testbed
