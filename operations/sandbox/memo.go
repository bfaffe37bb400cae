package sandbox

import (
	"encoding/json"
	"sync"
)

// memo keeps the JSON of generated data that depends only on the account
// and the day (statements, the profile), so that the sandbox, a stand-in for
// a provider, spends little of the worker's time making it up again. It is
// bounded: full, it starts over.
type memo struct {
	mu sync.Mutex
	m  map[memoKey][]byte
}

type memoKey struct {
	seed      uint64
	what, day string
	n         int
}

const memoMax = 4096

var generated = &memo{m: map[memoKey][]byte{}}

// json returns the JSON of make(), made once per key.
func (c *memo) json(k memoKey, make func() any) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := json.Marshal(make())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= memoMax {
		c.m = map[memoKey][]byte{}
	}
	c.m[k] = b
	c.mu.Unlock()
	return b, nil
}
