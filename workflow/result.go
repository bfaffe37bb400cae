package workflow

import (
	"encoding/json"
	"fmt"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// buildResult shapes a link's result from its operations' data (seed 001):
// one operation is flat, {resultKey: data}; several are wrapped,
// {"operations": [{resource, action, data: {resultKey: data}}, ...]}. The
// providers' data is spliced in as it is: Provider.Execute promises valid
// JSON (the remote client's decoder has checked it; the sandbox marshals).
func buildResult(reg *operations.Registry, integration string, ops []linkflow.Operation, datas []json.RawMessage) (json.RawMessage, error) {
	size := 32
	for _, d := range datas {
		size += len(d) + 96
	}
	b := make([]byte, 0, size)
	if len(ops) > 1 {
		b = append(b, `{"operations":[`...)
	}
	for i, op := range ops {
		act, ok := reg.Action(integration, op.Resource, op.Action)
		if !ok {
			return nil, fmt.Errorf("operation %d: %s %s not in the catalog", i, op.Action, op.Resource)
		}
		data := datas[i]
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		if len(ops) > 1 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"resource":`...)
			b = appendJSONString(b, op.Resource)
			b = append(b, `,"action":`...)
			b = appendJSONString(b, op.Action)
			b = append(b, `,"data":`...)
		}
		b = append(b, '{')
		b = appendJSONString(b, act.ResultKey)
		b = append(b, ':')
		b = append(b, data...)
		b = append(b, '}')
		if len(ops) > 1 {
			b = append(b, '}')
		}
	}
	if len(ops) > 1 {
		b = append(b, "]}"...)
	}
	return b, nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
