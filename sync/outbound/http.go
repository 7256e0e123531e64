package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// MaxRequestBytes caps a send request's JSON body: a 25 MiB message grows
// by a third in base64.
const MaxRequestBytes = 36 << 20

// sendTimeout bounds one request's work. The work is detached from the
// HTTP request: a client that hangs up mid-submission would otherwise
// leave the send's outcome unknown.
const sendTimeout = 15 * time.Minute

// readBodyTimeout bounds reading one request body (36 MiB at 300 KiB/s).
const readBodyTimeout = 2 * time.Minute

// SendPath is the route NewHandler serves, in net/http pattern syntax.
const SendPath = "POST /v1/accounts/{id}/send"

// NewHandler serves POST /v1/accounts/{id}/send. Every request must carry
// "Authorization: Bearer <token>", the token being the content of
// tokenFile (re-read when it changes). Without a usable token file every
// request is refused with 503.
//
// Answers: 200 with a Result; 400 naming the bad field; 401 without the
// right token; 404 for an unknown account; 409 when the account cannot
// send, the outcome of an earlier attempt is unknown, or the same key is in
// flight; 413 when too large; 422 when the key was used for other mail;
// 502 when the SMTP server refused or could not be reached, the IMAP server
// failed, or the mail was sent but its Sent copy failed ("sent": true); 503
// without a usable token file or while shutting down; 500 otherwise. Error bodies
// are {"error": "...", "field": "...", "message_id": "...", "sent": bool}.
func NewHandler(s *Sender, tokenFile string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{s: s, token: newTokenFile(tokenFile, log), log: log}
	mux := http.NewServeMux()
	mux.HandleFunc(SendPath, h.send)
	return mux
}

type handler struct {
	s     *Sender
	token *tokenFile
	log   *slog.Logger
}

// errorBody is every non-200 answer.
type errorBody struct {
	Error     string `json:"error"`
	Field     string `json:"field,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Sent is set when the mail went out although the request failed.
	Sent bool `json:"sent,omitempty"`
}

func (h *handler) send(w http.ResponseWriter, r *http.Request) {
	if !h.authorize(w, r) {
		return
	}
	account := r.PathValue("id")
	// The server's own timeouts suit scrapes, not a 36 MiB body or an SMTP
	// server that takes minutes to answer the data: extend them for this
	// request (errors mean the writer cannot, as in tests).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(readBodyTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(readBodyTimeout + sendTimeout))
	req, err := decodeRequest(w, r, MaxRequestBytes)
	if err != nil {
		h.fail(w, account, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sendTimeout)
	defer cancel()
	res, err := h.s.Send(ctx, account, *req)
	if err != nil {
		h.fail(w, account, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// authorize checks the bearer token and answers 401 or 503 itself.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	ok, err := h.token.check(tok)
	switch {
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the send API is disabled: no usable admin.token_file (see the daemon's log)"})
		return false
	case auth == "" || !strings.EqualFold(scheme, "Bearer") || tok == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailsync"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing bearer token (Authorization: Bearer <token>)"})
		return false
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailsync", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid bearer token"})
		return false
	}
	return true
}

// decodeRequest reads the JSON body strictly: unknown fields are errors,
// so a misspelt "bcc" does not silently send to fewer people. The
// Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header) may
// stand in for the body's idempotency_key.
func decodeRequest(w http.ResponseWriter, r *http.Request, limit int64) (*Request, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fieldErr("body", "must hold exactly one JSON object")
	}
	if hk := strings.TrimSpace(r.Header.Get("Idempotency-Key")); hk != "" {
		switch {
		case req.IdempotencyKey == "":
			req.IdempotencyKey = hk
		case req.IdempotencyKey != hk:
			return nil, fieldErr("idempotency_key", "differs from the Idempotency-Key header")
		}
	}
	return &req, nil
}

// jsonError turns a decoding error into one naming the field.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: the request body exceeds %d bytes", ErrTooLarge, mbe.Limit)
	case errors.As(err, &se):
		return fieldErr("body", "invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fieldErr(field, "must be %s, not a JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return fieldErr("body", "is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("body", "ends in the middle of the JSON")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name := strings.Trim(f, `"`); name != "" {
			return fieldErr(name, "unknown field")
		}
		return fieldErr("body", "has a field with an empty name")
	}
	if strings.Contains(err.Error(), "illegal base64") {
		return fieldErr("body", "a raw or attachment content is not valid base64: %v", err)
	}
	return fieldErr("body", "%v", err)
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "a list"
	case "struct":
		return "an object"
	}
	return "a " + k
}

// fail maps a Send error to its status code and logs server-side causes.
func (h *handler) fail(w http.ResponseWriter, account string, err error) {
	body := errorBody{Error: err.Error()}
	var fe *FieldError
	var se *SMTPError
	var ce *SentCopyError
	var oe *OutcomeUnknownError
	var ie *IMAPError
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &fe):
		code, body.Field = http.StatusBadRequest, fe.Field
	case errors.Is(err, ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnknownAccount):
		code = http.StatusNotFound
	case errors.As(err, &oe):
		code, body.MessageID = http.StatusConflict, oe.MessageID
	case errors.Is(err, ErrCannotSend), errors.Is(err, ErrInProgress):
		code = http.StatusConflict
	case errors.Is(err, ErrClosed):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, ErrKeyReused):
		code = http.StatusUnprocessableEntity
	case errors.As(err, &ce):
		code, body.MessageID, body.Sent = http.StatusBadGateway, ce.MessageID, true
	case errors.As(err, &se), errors.As(err, &ie):
		code = http.StatusBadGateway
	}
	if code == http.StatusInternalServerError {
		h.log.Error("send failed", "account", account, "err", err)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}
