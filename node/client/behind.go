package client

import (
	"context"
	"time"

	"github.com/medledger/medledger/consent"
)

// BehindWait bounds each wait for a node's next height before a refusal for naming
// something unknown is taken as final (an idle chain makes no next block).
const BehindWait = 3 * time.Second

// behindRetries is how many times RetryWhenBehind submits again.
const behindRetries = 2

// RetryWhenBehind is the one rule for a tx refused because its node is behind it:
// it calls submit, and while submit answers a refusal that MayBeBehind, waits (within
// BehindWait) for next, the node's next height, and calls submit again, at most
// twice. It returns submit's last error. A wait that fails (no next height in time,
// ctx done) ends the retries without an error: the refusal stands, and the caller
// holds it from submit's last call.
func RetryWhenBehind(ctx context.Context, submit func() (consent.Code, error), next func(context.Context) error) error {
	code, err := submit()
	for retry := 0; retry < behindRetries && err == nil && code.MayBeBehind(); retry++ {
		if werr := waitWithin(ctx, BehindWait, next); werr != nil {
			return nil
		}
		code, err = submit()
	}
	return err
}

func waitWithin(ctx context.Context, d time.Duration, wait func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return wait(ctx)
}
