// Package testbed starts the local world used by tests, the sandbox command
// and benchmarks. It is in three parts, each in the files named after it:
//
//   - The AWS gap-filler front (front*.go): Front, an http.Handler in front
//     of an in-process AWS emulator (kumo) that proxies to it and serves
//     itself what the project needs and kumo lacks or gets wrong. front.go
//     holds Front and the Lambda RevisionId and locking, front_faults.go
//     fault injection, latency and call counts, front_lambda_list.go
//     ListFunctions paging, front_lambda_update.go the Lambda update state,
//     front_lambda_quotas.go the Lambda request-rate quotas,
//     front_filter_log_events.go FilterLogEvents paging,
//     front_secretsmanager.go and front_secretsmanager_stages.go Secrets
//     Manager, front_ssm.go, front_ssm_put.go, front_ssm_history.go and
//     front_ssm_list.go SSM Parameter Store,
//     front_cloudformation.go CloudFormation,
//     front_cloudwatch.go and front_cloudwatch_metrics.go CloudWatch alarms
//     and metric data, front_cloudwatch_dashboards.go CloudWatch dashboards,
//     front_metric_filters.go Logs metric filters,
//     front_insights.go and front_insights_query.go Logs Insights, and
//     front_alarm_eval.go the World methods that stand in for what AWS does
//     by itself (EvaluateAlarms, RunMetricFilters). The gaps are listed
//     below.
//   - The reference Valine API (api*.go): API, a Valine auth API that reads
//     its JWT secrets from an emulated Lambda function's configuration and
//     writes its log lines into that function's emulated CloudWatch Logs
//     group. api.go holds API and its controls, api_handlers.go,
//     api_tokens.go, api_users.go, api_secrets.go (the secret source),
//     api_logs.go and api_busy.go the reference backend,
//     api_valine_*.go the reproduction of the real backend (BackendValine),
//     and api_runtime_secrets.go the secrets both read from a store at run
//     time (Options.RuntimeSecrets).
//   - The World that wires them (world*.go): world.go starts kumo, Front and
//     the API and reads and writes the functions' environments,
//     world_setup.go creates the functions, log groups and API,
//     world_deploy.go the stack-managed fleet and its deploys
//     (Options.Deploy, World.Redeploy) and world_deploy_template.go its
//     template and how a deploy resolves it, world_options.go holds Options,
//     Misbehaviour and Backend, and world_clock.go and world_random.go
//     small helpers.
//
// A rotation done through the Lambda API therefore takes effect in the API
// the way it does in production: after the API next re-reads the function
// configuration (Options.PropagationDelay) and, with Options.UpdateDuration,
// not before the update completes: until then the API serves the previous
// environment, as Lambda's previous execution environments do.
//
// The World writes environments through the emulator's Lambda API with its
// own SDK client, reading the configuration and writing it back with the
// RevisionId it read (World.SetSecrets, World.EditEnv, World.Redeploy); it
// imports none of the project's rotation code, which it is there to test.
//
// With Options.Deploy the functions are a stack-managed fleet, as the real
// Valine stack is: every function's secret variable comes from a template,
// so the next deploy writes whatever the deploy reads onto all of them and
// undoes a rotation done on the live functions alone. At Start the World
// creates the store entries the template references (an SSM SecureString
// parameter, a Secrets Manager secret) holding InitialSecret, a
// CloudFormation stack in kumo whose template has one
// AWS::Lambda::Function per function (FunctionName, the ExtraEnv variables
// as literals, the secret variable as {{resolve:ssm-secure:…}},
// {{resolve:secretsmanager:…}}, a NoEcho parameter's Ref, or the deploy
// environment's value itself, as serverless's ${env:JWT_SECRET} puts it),
// and the functions as the stack defines them, tagged
// aws:cloudformation:stack-name, -logical-id and -stack-id as CloudFormation
// tags them (World.StackName, World.StackID). kumo creates no resources
// from a template: the World does, through the Lambda API. World.Redeploy
// then does what `serverless deploy` does: it resolves the references as
// CloudFormation does at deploy time (a parameter's latest value, a
// secret's AWSCURRENT or the stage named, the deploy environment's value,
// World.SetDeployEnv), updates the stack, and writes every function's whole
// environment as the template defines it, dropping what was added by hand
// and reverting what was changed; a reference that resolves to nothing
// fails the deploy before any function changes. See DeployOptions.
//
// With Options.RuntimeSecrets the API reads its secrets from a store
// instead of the function's environment, as a function using the AWS
// Parameters and Secrets Lambda Extension does (the runbook's path for an
// environment near the 4 KB limit): an SSM parameter or a Secrets Manager
// secret (the secondary from a second parameter or the AWSPREVIOUS stage;
// one that is not there means no secondary), each value cached for
// RuntimeSecrets.CacheTTL (default 5 minutes, API.SetCacheTTL), through
// the API's own clients, so its reads are not the client's calls
// (FromTestbedAPI). The reference backend verifies with the primary and
// the secondary; BackendValine with the primary only, read on each request
// through the cache rather than at module load, a value under 32
// characters or one it cannot read answering 500 (AcceptOldTokens then
// accepts every value it has read). PropagationDelay then only paces
// BackendValine's new execution environments. The functions' environments
// still carry the secret variable, which the API then ignores.
//
// Options.Backend chooses the API. BackendReference, the default, serves any
// Profile with dual-secret verification and one "JWT verification" log line
// per verification. BackendValine reproduces the real Project Valine backend
// as it was observed (api_valine_*.go): the profile defaults to
// probes.Presets["valine"]; POST /auth/login answers {accessToken, user,
// csrfToken} with Secure, SameSite=None cookies access_token and
// refresh_token (HttpOnly) and XSRF-TOKEN (not HttpOnly, 15 minutes), is
// limited to 100 attempts an hour per source IP (429) and answers every
// 15th attempt 503 SERVER_BUSY by default (Options.Busy, API.SetBusy);
// GET /auth/me and /me/profile take the access_token cookie first, then a
// bearer header; POST /auth/refresh takes the refresh_token cookie only,
// issues a new access token and never rotates the refresh token. Tokens are
// HS256 {sub, type, iat, exp} (24 h access, 7 days refresh), verified as
// jwt.verify(token, secret) verifies them: HS384 and HS512 pass, a token
// without exp passes forever, a legacy userId claim stands in for sub,
// alg=none and a missing or wrong type are refused. Only Profile.SecretVar
// is read, and only when a new execution environment starts: at start and
// when the function's RevisionId (kept by Front; during an update in
// progress, the one before it) differs from the one the environment
// loaded, checked at most every PropagationDelay; a new
// environment also forgets the rate limit. A secret under 32 characters
// makes every request of the environment answer 500. Logs are Lambda's plain
// text (START, END and REPORT lines around each invocation) with no JWT line
// and no User-Agent: /auth/me logs INFO me_token_found where a token was
// presented and WARN me_no_token for every refused or missing one. Routes
// the stack lacks get API Gateway's 404 and no log. Of the misbehaviours,
// Down, RefreshFails and ServerBusy (and SetLatency) act as in the reference
// backend; AcceptOldTokens (every secret an earlier environment loaded),
// AcceptAlgNone, AcceptExpired, AcceptRefreshAsAccess and SkipSignature relax
// the valine verification as they name; IgnoreSecondary, AcceptAnyHMAC and
// AcceptNoExp describe what it already does, and RefreshIgnoresSecondary and
// RefreshSignsWithVerifier have nothing to act on (one secret), so these
// five are ignored there.
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
//   - Lambda update state (Options.UpdateDuration, Front.SetUpdateDuration;
//     off by default): kumo applies an update at once and reports
//     LastUpdateStatus Successful, so the FunctionUpdatedV2 waiter never
//     waits and nothing is ever refused. With a duration, an accepted
//     UpdateFunctionConfiguration or UpdateFunctionCode keeps the function
//     InProgress that long in every configuration Front serves (the
//     update's answer included), another update of it meanwhile is 409
//     ResourceConflictException ("An update is in progress for resource:
//     <ARN>"), and the API keeps serving the previous environment until the
//     update completes (front_lambda_update.go).
//   - Lambda request-rate quotas (Options.LambdaQuotas,
//     Front.SetLambdaQuotas; off by default): kumo has none. Two token
//     buckets per World, ControlPerSecond (15) shared by every Lambda API
//     but invocation, GetFunction and GetPolicy, and GetFunctionPerSecond
//     (100) for GetFunction; over the rate a request is 429
//     TooManyRequestsException, Reason CallerRateLimitExceeded. The
//     testbed's own requests (the API's reads, the World's writes) are
//     spared; Front.LambdaQuotaStats counts the rest per class
//     (front_lambda_quotas.go).
//   - FilterLogEvents paging: kumo answers at most Limit events (50 by
//     default) and never a nextToken, so a client following nextToken sees
//     only the first page. Front serves the pages, in event time order,
//     Limit a page (default 50, at most 10,000), with an opaque nextToken,
//     so every matching event is listed exactly once; kumo still does the
//     matching (front_filter_log_events.go).
//   - Logs Insights (StartQuery, GetQueryResults, StopQuery): a test double
//     computing the project's query shapes (filter @message like /RE/, an
//     optional parse, stats count(*) by bin or by a parsed field) from the
//     events stored in kumo; any other shape is MalformedQueryException. A
//     query stays Running for a set number of polls
//     (Front.SetInsightsPollsUntilComplete) and the account's concurrency
//     limit can be set (Front.SetInsightsConcurrencyLimit). See
//     insightsFront for its limits.
//   - Secrets Manager TagResource/UntagResource (the rotation journal),
//     ClientRequestToken idempotency (front_secretsmanager.go), and the
//     staging labels of Secrets Manager's rotation protocol
//     (front_secretsmanager_stages.go): kumo relabels AWSCURRENT as
//     AWSPREVIOUS on every write whatever VersionStages says (after
//     PutSecretValue with ["AWSPENDING"] no version is AWSCURRENT), leaves
//     AWSPREVIOUS on stale versions and lacks UpdateSecretVersionStage.
//     Front keeps every version's labels itself and moves them as AWS
//     does: a write moves only the labels it names (AWSPREVIOUS follows
//     AWSCURRENT), UpdateSecretVersionStage requires RemoveFromVersionId
//     to name the version a label leaves (InvalidParameterException),
//     never removes AWSCURRENT, and GetSecretValue by stage or VersionId
//     and DescribeSecret's VersionIdsToStages (deprecated versions
//     unlisted) agree with them.
//   - SSM Parameter Store (front_ssm*.go): kumo keeps only a parameter's
//     latest version, lacks GetParameterHistory, LabelParameterVersion and
//     UnlabelParameterVersion ("The action … is not valid"), reads
//     "name:3" and "name:label" as literal names (ParameterNotFound),
//     answers a SecureString read without WithDecryption with
//     "kms:alias/aws/ssm:<plaintext>", accepts what AWS refuses (a new
//     parameter without Type, names with spaces or colons, values over the
//     tier's limit, Tags with Overwrite), drops PutParameter's Tags, tags
//     parameters that do not exist and keeps a deleted one's tags. Front
//     serves Parameter Store itself from a store of its own, one per World:
//     every version (at most 100), labels (one version at a time, 10 a
//     version, AWS's label rules with InvalidLabels), selectors
//     (Selector ":3" / ":label"; ParameterNotFound,
//     ParameterVersionNotFound), history pages of at most 50, ciphertext
//     for undecrypted SecureString reads, AWS's validation, path and
//     describe listings with their filters, and parameter tags. Other SSM
//     operations go to kumo. See ssmFront for what is not modelled.
//   - CloudFormation (front_cloudformation.go): kumo cannot parse a
//     CreateStack or UpdateStack carrying Parameters (ValidationError
//     "Failed to parse request body"), so Front keeps them, checked against
//     the template, and lists them in DescribeStacks with NoEcho values as
//     "****"; it also serves UpdateStack's UsePreviousTemplate, refuses an
//     update that changes nothing ("No updates are to be performed."),
//     accepts a stack id where kumo wants the name, answers a missing stack
//     with AWS's ValidationError instead of kumo's StackNotFoundException,
//     shows no LastUpdatedTime before the first update (kumo sets it at
//     creation) and gives a Lambda function's name as its physical id
//     (kumo makes one up). GetTemplate is kumo's, which returns the
//     template as it was sent.
//   - CloudWatch alarms: the fields kumo's PutMetricAlarm drops
//     (TreatMissingData, DatapointsToAlarm, …) and DescribeAlarms paging
//     (front_cloudwatch.go); PutMetricData with a Timestamp or a gzipped
//     body, and GetMetricStatistics by Period (front_cloudwatch_metrics.go).
//   - CloudWatch dashboards (PutDashboard, GetDashboard, ListDashboards,
//     DeleteDashboards), which kumo does not have at all (InvalidAction).
//     PutDashboard checks the name and the body as AWS documents the body's
//     structure (a JSON object with a widgets array; each widget's type,
//     position, size and properties; a metric widget's region and metrics
//     arrays, a text widget's markdown, a log widget's region and SOURCE
//     query, an alarm widget's ARNs) and refuses the rest with
//     DashboardInvalidInputError and its DashboardValidationMessages; bodies
//     are stored as sent (front_cloudwatch_dashboards.go).
//   - CloudWatch Logs metric filters (PutMetricFilter, DescribeMetricFilters,
//     DeleteMetricFilter) for plain-text patterns (front_metric_filters.go).
//   - Test doubles for what the emulator never does: World.EvaluateAlarms
//     sets alarm states from stored metric data, World.RunMetricFilters
//     turns matching log events into metric data (front_alarm_eval.go).
//   - Fault injection and latency, which kumo does not offer.
//
// Gaps not filled here, which callers must avoid: FilterLogEvents matches a
// plain substring (so pass patterns unquoted); alarms change state only
// through EvaluateAlarms; kumo's stack ids say account 123456789012 where
// every other ARN says 000000000000, and kumo's CloudFormation creates no
// resources; kumo's Lambda accepts tag keys starting with "aws:", which
// AWS reserves for itself (the World relies on it to tag the functions as
// CloudFormation does); kumo's SSM GetParameter without WithDecryption returns a
// SecureString's plain value prefixed "kms:alias/aws/ssm:" (AWS returns
// ciphertext), so never treat that value as secret-free; storage is global
// to the process, which is why every World uses random names.
package testbed
