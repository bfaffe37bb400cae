package workflow

import (
	"encoding/json"
	"fmt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// buildResult shapes a link's result from its operations' data (seed 001):
// one operation is flat, {resultKey: data}; several are wrapped,
// {"operations": [{resource, action, data: {resultKey: data}}, ...]}.
func buildResult(reg *operations.Registry, integration string, ops []linkflow.Operation, datas []json.RawMessage) (json.RawMessage, error) {
	keyed := make([]json.RawMessage, len(ops))
	for i, op := range ops {
		act, ok := reg.Action(integration, op.Resource, op.Action)
		if !ok {
			return nil, fmt.Errorf("operation %d: %s %s not in the catalog", i, op.Action, op.Resource)
		}
		data := datas[i]
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		b, err := json.Marshal(map[string]json.RawMessage{act.ResultKey: data})
		if err != nil {
			return nil, err
		}
		keyed[i] = b
	}
	if len(ops) == 1 {
		return keyed[0], nil
	}
	type wrapped struct {
		Resource string          `json:"resource"`
		Action   string          `json:"action"`
		Data     json.RawMessage `json:"data"`
	}
	out := struct {
		Operations []wrapped `json:"operations"`
	}{Operations: make([]wrapped, len(ops))}
	for i, op := range ops {
		out.Operations[i] = wrapped{Resource: op.Resource, Action: op.Action, Data: keyed[i]}
	}
	return json.Marshal(out)
}
