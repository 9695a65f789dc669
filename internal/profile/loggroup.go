package profile

// LogGroup is the CloudWatch Logs group a Lambda function writes to:
// "/aws/lambda/<function>", Lambda's convention. The log check, the metric
// filters and the Logs Insights queries all read it from here.
func LogGroup(function string) string { return "/aws/lambda/" + function }
