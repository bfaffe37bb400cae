package client

import (
	"context"
	"encoding/json"
)

// Expand names what a read adds inline (the expand query parameter).
type Expand string

// ExpandIntegration adds the integration's catalog entry to each link or
// connection read (its Integration field).
const ExpandIntegration Expand = "integration"

// Integration is a provider in the catalog, with its resources.
type Integration struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"displayName"`
	Resources   []Resource `json:"resources"`
}

// Resource is something of an integration that operations act on.
type Resource struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Actions     []Action `json:"actions"`
}

// Action is what an operation does to a resource.
type Action struct {
	Name string `json:"name"`
	// Description says what the action does, in words an end user
	// understands.
	Description string `json:"description"`
	// Arguments is the JSON Schema (2020-12) of the action's arguments.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// ResultKey is the key of its data in a result.
	ResultKey         string `json:"resultKey"`
	ResultDescription string `json:"resultDescription"`
}

// providerList is the answer of GET /v1/providers.
type providerList struct {
	Data []Integration `json:"data"`
}

// ListProviders returns the catalog, integrations sorted by id (GET
// /v1/providers).
func (c *Client) ListProviders(ctx context.Context) ([]Integration, error) {
	var out providerList
	if _, err := c.do(ctx, c.get("/v1/providers", nil), &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}
