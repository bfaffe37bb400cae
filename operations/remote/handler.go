package remote

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// HandlerConfig configures a Handler. Zero fields take the documented
// defaults.
type HandlerConfig struct {
	// Registry holds the integrations to serve. Required.
	Registry *operations.Registry
	// Secret, when set, must arrive as "Authorization: Bearer <Secret>" on
	// every request. Default: none.
	Secret string
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64
	// Logger logs failures that were not a provider's typed errors. Default:
	// no logging.
	Logger *zap.Logger
}

// Handler serves a Registry's integrations over the remote protocol.
type Handler struct {
	cfg HandlerConfig
	mux *http.ServeMux
	log *zap.Logger
}

// NewHandler returns a Handler with cfg's defaults filled in.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Registry == nil {
		return nil, errors.New("remote: HandlerConfig.Registry is required")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, errors.New("remote: HandlerConfig.MaxBodyBytes must not be negative")
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, 1<<20)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger.Named("remote")}
	h.mux.HandleFunc("GET "+PathCatalog, h.catalog)
	h.mux.HandleFunc("POST "+PathLogin, h.login)
	h.mux.HandleFunc("POST "+PathContinueLogin, h.continueLogin)
	h.mux.HandleFunc("POST "+PathExecute, h.execute)
	h.mux.HandleFunc("POST "+PathRefresh, h.refresh)
	h.mux.HandleFunc("POST "+PathRevoke, h.revoke)
	h.mux.HandleFunc("POST "+PathClose, h.close)
	return h, nil
}

// ServeHTTP checks the shared secret and routes the call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Secret != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Secret)) != 1 {
			writeError(w, &ErrorBody{Code: CodeUnauthorized, Message: "missing or wrong shared secret", Transient: true})
			return
		}
	}
	w.Header().Set(HeaderProtocol, strconv.Itoa(ProtocolVersion))
	if v := r.Header.Get(HeaderProtocol); v != "" && v != strconv.Itoa(ProtocolVersion) {
		// A caller of another version (curl sends none) would read answers
		// it does not understand.
		writeError(w, &ErrorBody{Code: CodeNotSupported,
			Message: fmt.Sprintf("protocol version %s; this provider speaks %d", v, ProtocolVersion)})
		return
	}
	// Every answer names itself, so a caller's trace can point at it.
	w.Header().Set("X-Request-Id", newRequestID())
	// Bounded on the server's own writer: past the bound, net/http closes
	// the connection rather than read on (a wrapper cannot pass that on).
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	sw := &statusWriter{ResponseWriter: w}
	defer h.recoverPanic(sw, r)
	h.mux.ServeHTTP(sw, r)
}

// recoverPanic answers a provider's panic as its untyped errors are
// answered (the provider failed, worth another try), and logs it with its
// stack in the handler's log; net/http would drop the connection and write
// the stack to the standard logger.
func (h *Handler) recoverPanic(w *statusWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	h.log.Error("provider panicked", zap.String("path", r.URL.Path), zap.Any("panic", p), zap.Stack("stack"))
	if w.wrote {
		panic(http.ErrAbortHandler) // half an answer: the connection is dropped, not the answer taken as whole
	}
	writeError(w, &ErrorBody{Code: string(linkflow.FailureProviderUnavailable), Message: "the provider failed", Transient: true})
}

// statusWriter notes whether an answer was begun.
type statusWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *statusWriter) WriteHeader(status int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) {
	c := Catalog{ProtocolVersion: ProtocolVersion, Integrations: []CatalogIntegration{}}
	for _, in := range h.cfg.Registry.Integrations() {
		_, refresh := in.Provider.(operations.Refresher)
		_, revoke := in.Provider.(operations.Revoker)
		c.Integrations = append(c.Integrations, CatalogIntegration{
			Integration: *in, Capabilities: Capabilities{Refresh: refresh, Revoke: revoke},
		})
	}
	writeJSON(w, http.StatusOK, c)
}

// decode reads a request body into v, answering the error itself when it
// cannot.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, &ErrorBody{Code: string(linkflow.FailureRejected), Message: "the request body is not the expected JSON"})
		return false
	}
	return true
}

// provider finds the provider of integration, answering the error itself
// when there is none.
func (h *Handler) provider(w http.ResponseWriter, integration string) (operations.Provider, bool) {
	p, ok := h.cfg.Registry.Provider(integration)
	if !ok {
		writeError(w, &ErrorBody{Code: string(linkflow.FailureRejected), Message: fmt.Sprintf("unknown integration %q", integration)})
	}
	return p, ok
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var req operations.LoginRequest
	if !h.decode(w, r, &req) {
		return
	}
	p, ok := h.provider(w, req.Integration)
	if !ok {
		return
	}
	res, err := p.Login(r.Context(), req)
	h.answer(w, r, res, err)
}

func (h *Handler) continueLogin(w http.ResponseWriter, r *http.Request) {
	var req operations.ContinueRequest
	if !h.decode(w, r, &req) {
		return
	}
	p, ok := h.provider(w, req.Integration)
	if !ok {
		return
	}
	res, err := p.ContinueLogin(r.Context(), req)
	if err == nil && res == nil {
		err = errors.New("the provider's ContinueLogin returned no result")
	}
	if err == nil && res.SessionID == "" {
		res.SessionID = req.SessionID
	}
	h.answer(w, r, res, err)
}

func (h *Handler) execute(w http.ResponseWriter, r *http.Request) {
	var req operations.ExecuteRequest
	if !h.decode(w, r, &req) {
		return
	}
	p, ok := h.provider(w, req.Integration)
	if !ok {
		return
	}
	// The registry's schemas are the provider's contract; check them here so
	// that every provider behind the handler gets only valid arguments.
	issues := h.cfg.Registry.ValidateOperations(req.Integration, []linkflow.Operation{{
		Resource: req.Resource, Action: req.Action, Arguments: req.Arguments,
	}})
	if len(issues) > 0 {
		msgs := make([]string, len(issues))
		for i, is := range issues {
			msgs[i] = strings.TrimPrefix(strings.TrimPrefix(is.Path, "operations[0]"), ".") + ": " + is.Message
		}
		writeError(w, &ErrorBody{Code: string(linkflow.FailureRejected), Message: "invalid operation: " + strings.Join(msgs, "; ")})
		return
	}
	res, err := p.Execute(r.Context(), req)
	if err != nil {
		h.answer(w, r, nil, err)
		return
	}
	h.answer(w, r, ExecuteResponse{Result: res}, nil)
}

// credentialsCall decodes a refresh or revoke request and finds its
// provider; it has answered the caller already when it reports false.
func (h *Handler) credentialsCall(w http.ResponseWriter, r *http.Request) (operations.Provider, CredentialsRequest, bool) {
	var req CredentialsRequest
	if !h.decode(w, r, &req) {
		return nil, req, false
	}
	p, ok := h.provider(w, req.Integration)
	return p, req, ok
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	p, req, ok := h.credentialsCall(w, r)
	if !ok {
		return
	}
	rf, ok := p.(operations.Refresher)
	if !ok {
		writeError(w, &ErrorBody{Code: CodeNotSupported, Message: req.Integration + " cannot refresh credentials"})
		return
	}
	creds, err := rf.Refresh(r.Context(), req.Credentials)
	if err != nil {
		h.answer(w, r, nil, err)
		return
	}
	h.answer(w, r, CredentialsResponse{Credentials: *creds}, nil)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	p, req, ok := h.credentialsCall(w, r)
	if !ok {
		return
	}
	rv, ok := p.(operations.Revoker)
	if !ok {
		writeError(w, &ErrorBody{Code: CodeNotSupported, Message: req.Integration + " cannot revoke credentials"})
		return
	}
	h.answer(w, r, struct{}{}, rv.Revoke(r.Context(), req.Credentials))
}

func (h *Handler) close(w http.ResponseWriter, r *http.Request) {
	var req CloseRequest
	if !h.decode(w, r, &req) {
		return
	}
	p, ok := h.provider(w, req.Integration)
	if !ok {
		return
	}
	h.answer(w, r, struct{}{}, p.Close(r.Context(), req.SessionID))
}

// answer writes v, or err as the protocol's error body.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	var pe *operations.Error
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, context.DeadlineExceeded):
		pe = operations.Timeout("the provider did not answer in time")
	default:
		// Its text (an internal address, a query string) goes no further
		// than this log: linkflow shows the message to its customer.
		if !errors.Is(err, context.Canceled) {
			h.log.Warn("provider failed without a typed error", zap.String("path", r.URL.Path), zap.Error(err))
		}
		pe = operations.Unavailable("the provider failed")
	}
	body := &ErrorBody{Code: string(pe.Code), Message: pe.Message, Transient: pe.Transient}
	if pe.RetryAfter > 0 {
		body.RetryAfterMs = max(pe.RetryAfter.Milliseconds(), 1)
	}
	writeError(w, body)
}

func writeError(w http.ResponseWriter, e *ErrorBody) {
	if e.RetryAfterMs > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(float64(e.RetryAfterMs)/1000)), 10))
	}
	writeJSON(w, statusFor(e.Code), ErrorResponse{Error: *e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Error: ErrorBody{Code: string(linkflow.FailureProviderUnavailable), Message: "could not encode the answer", Transient: true}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "prq_" + hex.EncodeToString(b)
}
