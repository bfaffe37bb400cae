package client

import (
	"context"
	"time"
)

// SetSleep replaces how c waits between tries, so tests see the waits
// without spending them.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// SleepCtx is the wait a Client uses unless a test replaces it.
var SleepCtx = sleepCtx
