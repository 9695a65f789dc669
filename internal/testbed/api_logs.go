package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// logPutter is the one CloudWatch Logs method the API's log writer calls.
type logPutter interface {
	PutLogEvents(ctx context.Context, in *cloudwatchlogs.PutLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.PutLogEventsOutput, error)
}

// logWriter writes the API's verification lines into its function's log
// group, one PutLogEvents per line, as the Lambda runtime would ship them.
type logWriter struct {
	client logPutter
	group  string
	stream string
	log    *slog.Logger
	mu     sync.Mutex // PutLogEvents to one stream is serialised on AWS too
}

// write ships one line synchronously. It uses a context detached from the
// request's cancellation, so a client hanging up cannot lose the line. A
// failure is logged to the testbed's logger and otherwise ignored: the
// response does not depend on it.
func (l *logWriter) write(ctx context.Context, line string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName:  aws.String(l.group),
		LogStreamName: aws.String(l.stream),
		LogEvents:     []cwltypes.InputLogEvent{{Message: aws.String(line), Timestamp: aws.Int64(time.Now().UnixMilli())}},
	})
	if err != nil {
		l.log.Warn("writing a verification log line failed", "group", l.group, "err", err)
	}
}

// safeField keeps a token-derived value (a subject, an algorithm name) short
// and plain, so a forged token cannot smuggle anything into a log line.
var safeField = regexp.MustCompile(`^[A-Za-z0-9_.@+-]{1,64}$`)

// plain returns v if it is a short plain word, else "?".
func plain(v string) string {
	if safeField.MatchString(v) {
		return v
	}
	return "?"
}

// verifiedLine is the log line for a successful verification.
func verifiedLine(secret, sub, path, userAgent string) string {
	return fmt.Sprintf("JWT verification ok secret=%s sub=%s path=%s ua=%s", secret, plain(sub), path, logUserAgent(userAgent))
}

// logUserAgent is the User-Agent as logged: kept only if short and plain.
func logUserAgent(userAgent string) string {
	if safeUserAgent.MatchString(userAgent) {
		return userAgent
	}
	return "?"
}

// failedLine is the log line for a failed verification. reason is one of the
// testbed's fixed phrases, never an error's text, so it cannot carry a token;
// the User-Agent is kept only if it is short and plain.
func failedLine(reason, path, userAgent string) string {
	return fmt.Sprintf("JWT verification failed reason=%q path=%s ua=%s", reason, path, logUserAgent(userAgent))
}

// safeUserAgent is what a logged User-Agent may look like.
var safeUserAgent = regexp.MustCompile(`^[A-Za-z0-9_.()/+-]{1,64}$`)
