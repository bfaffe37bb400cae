package client

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strconv"
)

// Page is one page of a list, newest first unless the list says otherwise.
type Page[T any] struct {
	Data []T `json:"data"`
	// NextCursor is passed as Cursor to get the next page; nil on the last.
	// It is opaque: never build or parse one.
	NextCursor *string `json:"nextCursor"`
}

// PageError is what a list iterator (Links, Connections, FailedWebhooks)
// yields when a page could not be read, after every item before it: Cursor
// is that page's (for the first page, the params' Cursor: "" from the
// start), so the list can resume there (pass it as the params' Cursor)
// rather than from the start. Err is the request's
// error (an *Error when the API answered one); errors.As and errors.Is see
// through PageError to it.
type PageError struct {
	Cursor string
	Err    error
}

func (e *PageError) Error() string { return e.Err.Error() }
func (e *PageError) Unwrap() error { return e.Err }

// pages iterates over every item of a cursor-paginated list from cursor on.
func pages[T any](ctx context.Context, cursor string, fetch func(ctx context.Context, cursor string) (*Page[T], error)) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		cursor := cursor // each range starts where the iterator was made
		for {
			p, err := fetch(ctx, cursor)
			if err != nil {
				yield(nil, &PageError{Cursor: cursor, Err: err})
				return
			}
			for i := range p.Data {
				if !yield(&p.Data[i], nil) {
					return
				}
			}
			if p.NextCursor == nil || *p.NextCursor == "" {
				return
			}
			if *p.NextCursor == cursor {
				// A cursor that does not move would loop for ever.
				yield(nil, fmt.Errorf("client: the list answered the cursor it was given (%q)", cursor))
				return
			}
			cursor = *p.NextCursor
		}
	}
}

// query builds query parameters, leaving out empty values.
type query url.Values

func (q query) str(name, v string) query {
	if v != "" {
		url.Values(q).Set(name, v)
	}
	return q
}

func (q query) expand(x []Expand) query {
	for _, v := range x {
		url.Values(q).Add("expand", string(v))
	}
	return q
}

func (q query) int(name string, v int) query {
	if v != 0 {
		url.Values(q).Set(name, strconv.Itoa(v))
	}
	return q
}
