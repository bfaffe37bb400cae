package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/internal/testenv"
	"github.com/linkflow/linkflow/internal/teststack"
	"github.com/linkflow/linkflow/webhooks"
)

// webhookStack is a stack without a worker; its webhook service wakes
// dispatchers at once.
func webhookStack(t *testing.T) *teststack.Stack {
	t.Helper()
	return teststack.NewStack(t, teststack.StackOptions{NoWorker: true})
}

// hookReceiver records webhook-ids; it answers 500 until up is set.
type hookReceiver struct {
	srv *httptest.Server
	up  atomic.Bool
	mu  sync.Mutex
	ids []string
}

func newHookReceiver(t *testing.T, up bool) *hookReceiver {
	h := &hookReceiver{}
	h.up.Store(up)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.ids = append(h.ids, r.Header.Get("webhook-id"))
		h.mu.Unlock()
		if !h.up.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...)
}

// endedLink creates a link (with webhookUrl when url is set) and cancels it.
func endedLink(t *testing.T, s *teststack.Stack, url string) string {
	t.Helper()
	body := map[string]any{"integrationId": "att", "operations": []map[string]string{{"resource": "accountProfile", "action": "read"}}}
	if url != "" {
		body["webhookUrl"] = url
	}
	resp := s.Do(t, http.MethodPost, "/v1/links", s.APIKey, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create link: %d %s", resp.StatusCode, resp.Body)
	}
	var l struct {
		LinkID string `json:"linkId"`
	}
	resp.JSON(t, &l)
	if resp := s.Do(t, http.MethodPost, "/v1/links/"+l.LinkID+"/cancel", s.APIKey, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel link: %d %s", resp.StatusCode, resp.Body)
	}
	return l.LinkID
}

type deliveriesBody struct {
	LinkID   string                 `json:"linkId"`
	Delivery *webhooks.DeliveryView `json:"delivery"`
	Data     []webhooks.Attempt     `json:"data"`
}

func deliveries(t *testing.T, s *teststack.Stack, linkID string) deliveriesBody {
	t.Helper()
	resp := s.Do(t, http.MethodGet, "/v1/links/"+linkID+"/deliveries", s.APIKey, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("deliveries: %d %s", resp.StatusCode, resp.Body)
	}
	var out deliveriesBody
	resp.JSON(t, &out)
	return out
}

func TestLinkDeliveriesAndRedeliver(t *testing.T) {
	t.Parallel()
	s := webhookStack(t)
	rc := newHookReceiver(t, true)
	linkID := endedLink(t, s, rc.srv.URL+"/hook")
	var d deliveriesBody
	testenv.Eventually(t, 10*time.Second, "the webhook delivered", func() bool {
		d = deliveries(t, s, linkID)
		return d.Delivery != nil && d.Delivery.Status == linkflow.DeliverySucceeded
	})
	if d.LinkID != linkID || len(d.Data) != 1 || d.Data[0].Trigger != "initial" || *d.Data[0].StatusCode != 200 ||
		d.Delivery.Type != "link.canceled" || d.Delivery.WebhookID != d.Data[0].WebhookID || d.Delivery.DeliveredAt == nil {
		t.Fatalf("deliveries = %+v", d)
	}

	resp := s.Do(t, http.MethodPost, "/v1/links/"+linkID+"/deliveries/redeliver", s.APIKey, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", resp.StatusCode, resp.Body)
	}
	testenv.Eventually(t, 10*time.Second, "the redelivery logged", func() bool {
		d = deliveries(t, s, linkID)
		return len(d.Data) == 2 && d.Delivery.Status == linkflow.DeliverySucceeded
	})
	if d.Data[1].Trigger != "manual" || d.Data[1].WebhookID != d.Data[0].WebhookID {
		t.Errorf("redelivery attempt = %+v", d.Data[1])
	}
	if ids := rc.received(); len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("receiver got webhook-ids %v", ids)
	}
	// The same log by the event's id.
	var byEvent struct {
		EventID  string                 `json:"eventId"`
		Delivery *webhooks.DeliveryView `json:"delivery"`
		Data     []webhooks.Attempt     `json:"data"`
	}
	if resp := s.Do(t, http.MethodGet, "/v1/events/"+d.Delivery.EventID+"/deliveries", s.APIKey, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("deliveries by event: %d %s", resp.StatusCode, resp.Body)
	} else {
		resp.JSON(t, &byEvent)
	}
	if byEvent.EventID != d.Delivery.EventID || byEvent.Delivery.LinkID != linkID || len(byEvent.Data) != 2 || byEvent.Data[1].Trigger != "manual" {
		t.Errorf("deliveries by event = %+v", byEvent)
	}
	if resp := s.Do(t, http.MethodGet, "/v1/events/evt_00000000000000000000000000000000/deliveries", s.APIKey, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deliveries of an unknown event: %d", resp.StatusCode)
	}

	// Another organization sees nothing; a read-only key cannot redeliver.
	_, otherKey, _ := s.NewOrg(t, "Other")
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/links/" + linkID + "/deliveries"},
		{http.MethodPost, "/v1/links/" + linkID + "/deliveries/redeliver"},
		{http.MethodGet, "/v1/links/link_nope/deliveries"},
	} {
		if resp := s.Do(t, r.method, r.path, otherKey, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s by another organization: %d", r.method, r.path, resp.StatusCode)
		}
	}
	readOnly, _, err := s.Store.CreateAPIKey(context.Background(), s.OrgID, "ro", "", []string{linkflow.ScopeLinksRead})
	if err != nil {
		t.Fatal(err)
	}
	if resp := s.Do(t, http.MethodPost, "/v1/links/"+linkID+"/deliveries/redeliver", readOnly, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("redeliver with a read-only key: %d", resp.StatusCode)
	}
	if resp := s.Do(t, http.MethodGet, "/v1/links/"+linkID+"/deliveries", readOnly, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("deliveries with a read-only key: %d", resp.StatusCode)
	}
	// A link without webhookUrl has nothing to redeliver.
	quiet := endedLink(t, s, "")
	if resp := s.Do(t, http.MethodPost, "/v1/links/"+quiet+"/deliveries/redeliver", s.APIKey, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("redeliver without webhookUrl: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestFailedWebhooksAndReplay(t *testing.T) {
	t.Parallel()
	s := webhookStack(t)
	rc := newHookReceiver(t, false)
	linkID := endedLink(t, s, rc.srv.URL+"/hook")
	type failedBody struct {
		Data       []webhooks.DeliveryView `json:"data"`
		NextCursor *string                 `json:"nextCursor"`
	}
	var f failedBody
	testenv.Eventually(t, 10*time.Second, "the delivery failed", func() bool {
		resp := s.Do(t, http.MethodGet, "/v1/webhooks/failed?limit=10", s.APIKey, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("failed: %d %s", resp.StatusCode, resp.Body)
		}
		resp.JSON(t, &f)
		return len(f.Data) == 1
	})
	if f.Data[0].LinkID != linkID || f.Data[0].Status != linkflow.DeliveryFailed || f.Data[0].Attempts != 4 || f.NextCursor != nil {
		t.Fatalf("failed = %+v", f)
	}
	for _, bad := range []string{`{"nope":1}`, `{"limit":0}`, `[]`} {
		if resp := s.Do(t, http.MethodPost, "/v1/webhooks/failed/replay", s.APIKey, bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replay with %s: %d", bad, resp.StatusCode)
		}
	}
	if resp := s.Do(t, http.MethodGet, "/v1/webhooks/failed?cursor=bogus", s.APIKey, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", resp.StatusCode)
	}

	rc.up.Store(true)
	resp := s.Do(t, http.MethodPost, "/v1/webhooks/failed/replay", s.APIKey, nil)
	var res webhooks.ReplayResult
	resp.JSON(t, &res)
	if resp.StatusCode != http.StatusAccepted || res.Replayed != 1 {
		t.Fatalf("replay: %d %s", resp.StatusCode, resp.Body)
	}
	testenv.Eventually(t, 10*time.Second, "the replay delivered", func() bool {
		d := deliveries(t, s, linkID)
		return d.Delivery.Status == linkflow.DeliverySucceeded
	})
	if d := deliveries(t, s, linkID); d.Data[len(d.Data)-1].Trigger != "replay" {
		t.Errorf("last attempt = %+v", d.Data[len(d.Data)-1])
	}
	resp = s.Do(t, http.MethodGet, "/v1/webhooks/failed", s.APIKey, nil)
	resp.JSON(t, &f)
	if len(f.Data) != 0 {
		t.Errorf("still failed after the replay: %+v", f.Data)
	}
}

func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	s := webhookStack(t)
	first, second := endedLink(t, s, ""), endedLink(t, s, "")
	type page struct {
		Data []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				LinkID string `json:"linkId"`
				Status string `json:"status"`
			} `json:"data"`
			Timestamp int64 `json:"timestamp"`
		} `json:"data"`
		NextCursor *string `json:"nextCursor"`
		HasMore    bool    `json:"hasMore"`
	}
	var p1, p2, p3 page
	s.Do(t, http.MethodGet, "/v1/events?limit=1", s.APIKey, nil).JSON(t, &p1)
	if len(p1.Data) != 1 || p1.Data[0].Data.LinkID != first || p1.Data[0].Type != "link.canceled" ||
		p1.Data[0].ID == "" || p1.Data[0].Timestamp == 0 || !p1.HasMore || p1.NextCursor == nil {
		t.Fatalf("page 1 = %+v", p1)
	}
	s.Do(t, http.MethodGet, "/v1/events?after="+*p1.NextCursor, s.APIKey, nil).JSON(t, &p2)
	if len(p2.Data) != 1 || p2.Data[0].Data.LinkID != second || p2.HasMore {
		t.Fatalf("page 2 = %+v", p2)
	}
	s.Do(t, http.MethodGet, "/v1/events?after="+*p2.NextCursor, s.APIKey, nil).JSON(t, &p3)
	if len(p3.Data) != 0 || p3.NextCursor == nil || *p3.NextCursor != *p2.NextCursor {
		t.Fatalf("page 3 = %+v", p3)
	}
	// Another organization's log is its own.
	_, otherKey, _ := s.NewOrg(t, "Other")
	var other page
	s.Do(t, http.MethodGet, "/v1/events", otherKey, nil).JSON(t, &other)
	if len(other.Data) != 0 {
		t.Errorf("another organization sees %d events", len(other.Data))
	}
	// Any cursor that passes validation is a page: empty when nothing follows
	// (the largest sequence there can be included).
	for _, after := range []string{"18446744073709551615", "18446744073709551614", "1000000", "0"} {
		resp := s.Do(t, http.MethodGet, "/v1/events?after="+after, s.APIKey, nil)
		wantStatus(t, resp, http.StatusOK)
		var p page
		resp.JSON(t, &p)
		if after != "0" && (len(p.Data) != 0 || p.NextCursor == nil || *p.NextCursor != after) {
			t.Errorf("after=%s: %+v, want an empty page that keeps the cursor", after, p)
		}
	}
	for _, q := range []string{"?after=bogus", "?limit=0", "?limit=1001", "?after=-1", "?after=1-0", "?after=18446744073709551616", "?after=01"} {
		if resp := s.Do(t, http.MethodGet, "/v1/events"+q, s.APIKey, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /v1/events%s: %d", q, resp.StatusCode)
		}
	}
	if resp := s.Do(t, http.MethodGet, "/v1/events", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d", resp.StatusCode)
	}
}
