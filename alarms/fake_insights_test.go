package alarms_test

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// blockingAPI is a small InsightsAPI fake: StartQuery signals started and
// blocks until release is closed (a nil release does not block);
// GetQueryResults answers status (Complete when unset).
type blockingAPI struct {
	release chan struct{}
	started chan struct{}
	status  cwltypes.QueryStatus
	starts  atomic.Int32
}

func (f *blockingAPI) StartQuery(ctx context.Context, in *cloudwatchlogs.StartQueryInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.StartQueryOutput, error) {
	f.starts.Add(1)
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &cloudwatchlogs.StartQueryOutput{QueryId: aws.String("q-1")}, nil
}

func (f *blockingAPI) GetQueryResults(context.Context, *cloudwatchlogs.GetQueryResultsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetQueryResultsOutput, error) {
	status := f.status
	if status == "" {
		status = cwltypes.QueryStatusComplete
	}
	return &cloudwatchlogs.GetQueryResultsOutput{Status: status}, nil
}

func (f *blockingAPI) StopQuery(context.Context, *cloudwatchlogs.StopQueryInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.StopQueryOutput, error) {
	return &cloudwatchlogs.StopQueryOutput{Success: true}, nil
}
