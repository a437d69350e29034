// Command hello is the cold-start baseline of the performance table: the
// smallest aws-lambda-go function, built and started exactly as the
// bridge's functions are, so their cold start can be given as a ratio to it.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, map[string]any) (string, error) { return "hello", nil })
}
