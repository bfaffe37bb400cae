package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/linkflow/linkflow"
)

// Integration describes one integration: what it is called, what it can do,
// and the Provider that does it.
type Integration struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"displayName"`
	Resources   []Resource `json:"resources"`
	// Provider executes the integration's operations. It is not serialised.
	Provider Provider `json:"-"`
}

// Resource is a kind of thing at the provider (a payment method, statements).
type Resource struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Actions     []Action `json:"actions"`
}

// Action is what can be done to a resource. Arguments is a JSON Schema for the
// operation's arguments (nil: the action takes none); ResultKey is the key the
// result goes under in a link's result; Description says, in words an end user
// understands, what the action does, and ResultDescription what it returns.
type Action struct {
	Name              string          `json:"name"`
	Description       string          `json:"description"`
	Arguments         json.RawMessage `json:"arguments,omitempty"`
	ResultKey         string          `json:"resultKey"`
	ResultDescription string          `json:"resultDescription"`

	schema *jsonschema.Schema
}

// Registry holds the integrations linkflow knows. It is safe for concurrent
// use; the API and the worker read the same one.
type Registry struct {
	now func() time.Time

	mu           sync.RWMutex
	integrations map[string]*Integration
}

// NewRegistry returns an empty registry. now is the clock that argument
// formats relative to today (a card expiry) are checked against; nil means
// time.Now.
func NewRegistry(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{now: now, integrations: map[string]*Integration{}}
}

// Register adds or replaces an integration after compiling every action's
// argument schema.
func (r *Registry) Register(in Integration) error {
	if in.ID == "" {
		return fmt.Errorf("register integration: empty id")
	}
	if in.Provider == nil {
		return fmt.Errorf("register integration %s: no provider", in.ID)
	}
	cp := in
	cp.Resources = slices.Clone(in.Resources)
	for i := range cp.Resources {
		res := &cp.Resources[i]
		res.Actions = slices.Clone(res.Actions)
		for j := range res.Actions {
			act := &res.Actions[j]
			if len(act.Arguments) == 0 {
				continue
			}
			sch, err := r.compile(act.Arguments)
			if err != nil {
				return fmt.Errorf("register integration %s: %s.%s arguments schema: %w", in.ID, res.Name, act.Name, err)
			}
			act.schema = sch
		}
	}
	r.mu.Lock()
	r.integrations[in.ID] = &cp
	r.mu.Unlock()
	return nil
}

// Integration returns the integration with id.
func (r *Registry) Integration(id string) (*Integration, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	in, ok := r.integrations[id]
	return in, ok
}

// Provider returns the provider of integration id.
func (r *Registry) Provider(id string) (Provider, bool) {
	in, ok := r.Integration(id)
	if !ok {
		return nil, false
	}
	return in.Provider, true
}

// Integrations returns every integration, sorted by id.
func (r *Registry) Integrations() []*Integration {
	r.mu.RLock()
	out := make([]*Integration, 0, len(r.integrations))
	for _, in := range r.integrations {
		out = append(out, in)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IDs returns the ids of every integration, sorted.
func (r *Registry) IDs() []string {
	var ids []string
	for _, in := range r.Integrations() {
		ids = append(ids, in.ID)
	}
	return ids
}

// Action returns the action of resource in integration.
func (r *Registry) Action(integration, resource, action string) (*Action, bool) {
	in, ok := r.Integration(integration)
	if !ok {
		return nil, false
	}
	for i := range in.Resources {
		if in.Resources[i].Name != resource {
			continue
		}
		for j := range in.Resources[i].Actions {
			if in.Resources[i].Actions[j].Name == action {
				return &in.Resources[i].Actions[j], true
			}
		}
	}
	return nil, false
}

// Close closes every provider that holds resources (remote clients).
func (r *Registry) Close(ctx context.Context) {
	for _, in := range r.Integrations() {
		if c, ok := in.Provider.(interface{ Shutdown(context.Context) }); ok {
			c.Shutdown(ctx)
		}
	}
}

// ValidateOperations checks that integration exists, that every operation's
// resource and action exist in it, and that each operation's arguments match
// the action's schema. It returns every problem at once, with paths such as
// "operations[1].arguments.cardNumber".
func (r *Registry) ValidateOperations(integration string, ops []linkflow.Operation) []linkflow.Issue {
	var issues []linkflow.Issue
	in, ok := r.Integration(integration)
	if !ok {
		return []linkflow.Issue{r.UnknownIntegration(integration)}
	}
	for i, op := range ops {
		base := fmt.Sprintf("operations[%d]", i)
		if op.Resource == "" {
			issues = append(issues, linkflow.Issue{Path: base + ".resource", Message: "is required"})
		}
		if op.Action == "" {
			issues = append(issues, linkflow.Issue{Path: base + ".action", Message: "is required"})
		}
		if op.Resource == "" || op.Action == "" {
			continue
		}
		act, ok := r.Action(in.ID, op.Resource, op.Action)
		if !ok {
			issues = append(issues, unknownOperation(in, base, op))
			continue
		}
		issues = append(issues, r.validateArguments(act, base+".arguments", op.Arguments)...)
	}
	return issues
}

// UnknownIntegration is the issue of an integrationId the catalog lacks: it
// names the integrations there are.
func (r *Registry) UnknownIntegration(id string) linkflow.Issue {
	return linkflow.Issue{Path: "integrationId", Message: fmt.Sprintf("unknown integration %q; the integrations are %s (GET /v1/providers lists them with their operations)",
		id, nameList(r.IDs()))}
}

// unknownOperation is the issue of an operation the integration lacks: it
// names the resources there are, or the resource's actions.
func unknownOperation(in *Integration, path string, op linkflow.Operation) linkflow.Issue {
	var resources []string
	for _, res := range in.Resources {
		resources = append(resources, res.Name)
		if res.Name != op.Resource {
			continue
		}
		var actions []string
		for _, a := range res.Actions {
			actions = append(actions, a.Name)
		}
		return linkflow.Issue{Path: path + ".action", Message: fmt.Sprintf("%s cannot %s %s; its actions on %s are %s",
			in.ID, op.Action, op.Resource, op.Resource, nameList(actions))}
	}
	return linkflow.Issue{Path: path + ".resource", Message: fmt.Sprintf("%s has no resource %q; its resources are %s (GET /v1/providers lists their actions)",
		in.ID, op.Resource, nameList(resources))}
}

// nameList lists names for a message, at most 20 of them.
func nameList(names []string) string {
	if len(names) > 20 {
		names = append(names[:20:20], "…")
	}
	return strings.Join(names, ", ")
}
