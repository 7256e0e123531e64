package hubspottest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fault is an injected answer for the next calls of an operation.
type fault struct {
	op         string // path prefix; "" matches every call
	status     int
	left       int
	retryAfter int // seconds, for 429; 0 sends no Retry-After
}

// Fail makes the next n calls whose path starts with pathPrefix ("" for
// any) fail with status (a 5xx, or 429).
func (s *Server) Fail(pathPrefix string, status, n int) {
	s.mu.Lock()
	s.faults = append(s.faults, fault{op: pathPrefix, status: status, left: n})
	s.mu.Unlock()
}

// Storm answers the next n calls 429, as HubSpot does when an app is over
// its ten-secondly limit, with Retry-After when retryAfter > 0.
func (s *Server) Storm(n int, retryAfter time.Duration) {
	s.mu.Lock()
	s.faults = append(s.faults, fault{status: http.StatusTooManyRequests, left: n, retryAfter: int(retryAfter / time.Second)})
	s.mu.Unlock()
}

const interval = 10 * time.Second

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := r.Method + " " + r.URL.Path
	status := s.handle(w, r)
	s.mu.Lock()
	s.calls = append(s.calls, Call{At: time.Now(), Op: op, Status: status})
	s.mu.Unlock()
}

func isSearch(path string) bool { return strings.HasSuffix(path, "/search") }

// handle answers one request and returns its status.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) int {
	p := r.URL.Path
	switch {
	case p == "/oauth/v1/token":
		return s.oauthToken(w, r)
	case p == "/oauth/v2/private-apps/get/access-token-info":
		return s.privateTokenInfo(w, r)
	case strings.HasPrefix(p, "/oauth/v1/access-tokens/"):
		return s.oauthTokenInfo(w, r)
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || got != s.Token() {
		// HubSpot's answer to an expired or unknown token.
		return writeError(w, http.StatusUnauthorized, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
	}
	search := isSearch(p)
	if st, ok := s.admit(w, p, search); !ok {
		return st
	}
	switch {
	case search:
		return s.search(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/crm/v3/objects/"), "/search"))
	case p == "/crm/v3/objects/emails/batch/create":
		return s.createEmails(w, r)
	case p == "/crm/v3/objects/emails/batch/archive":
		return s.archiveEmails(w, r)
	case p == "/crm/v3/objects/deals/batch/read":
		return s.readDeals(w, r)
	case p == "/crm/v3/objects/emails":
		return s.listEmails(w, r)
	case strings.HasPrefix(p, "/crm/v4/associations/"):
		parts := strings.Split(strings.TrimPrefix(p, "/crm/v4/associations/"), "/")
		return s.readAssociations(w, r, parts[0], parts[1])
	case strings.HasPrefix(p, "/crm/v3/properties/emails/"):
		name := strings.TrimPrefix(p, "/crm/v3/properties/emails/")
		if name != s.opts.KeyProperty {
			return writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Unable to find property "+name+" for object type emails")
		}
		return writeJSON(w, http.StatusOK, map[string]any{"name": name, "label": "mailsync key", "type": "string", "fieldType": "text",
			"groupName": "emailinformation", "description": "mailsync's idempotency key", "options": []any{}, "hasUniqueValue": false})
	}
	return writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "not implemented by the fake")
}

// admit applies injected faults and HubSpot's limits, and sets the rate
// limit headers. It returns false when it answered already.
func (s *Server) admit(w http.ResponseWriter, path string, search bool) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for i := range s.faults {
		f := &s.faults[i]
		if f.left == 0 || !strings.HasPrefix(path, f.op) {
			continue
		}
		f.left--
		if f.status == http.StatusTooManyRequests {
			s.limitHeaders(w, 0)
			if f.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
			}
			return writeRateLimit(w, "TEN_SECONDLY_ROLLING"), false
		}
		return writeError(w, f.status, "INTERNAL_ERROR", "internal error (injected)"), false
	}
	s.window = trim(s.window, now.Add(-interval))
	if search {
		s.searchWin = trim(s.searchWin, now.Add(-time.Second))
		if len(s.searchWin) >= s.opts.SearchPerSecond {
			return writeRateLimit(w, "SECONDLY"), false
		}
	}
	if len(s.window) >= s.opts.PerTenSeconds {
		s.limitHeaders(w, 0)
		return writeRateLimit(w, "TEN_SECONDLY_ROLLING"), false
	}
	s.window = append(s.window, now)
	if search {
		s.searchWin = append(s.searchWin, now)
		return 0, true // search answers carry no rate limit headers
	}
	s.limitHeaders(w, s.opts.PerTenSeconds-len(s.window))
	return 0, true
}

func trim(ts []time.Time, before time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(before) {
		i++
	}
	return ts[i:]
}

func (s *Server) limitHeaders(w http.ResponseWriter, remaining int) {
	h := w.Header()
	h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(s.opts.PerTenSeconds))
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.Itoa(int(interval/time.Millisecond)))
	if !s.opts.OAuth { // the daily pair is not sent to OAuth apps
		h.Set("X-HubSpot-RateLimit-Daily", "250000")
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.Itoa(250000-len(s.calls)))
	}
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
	return status
}

func writeError(w http.ResponseWriter, status int, category, msg string) int {
	return writeJSON(w, status, map[string]any{"status": "error", "message": msg, "correlationId": uuid(), "category": category})
}

func writeRateLimit(w http.ResponseWriter, policy string) int {
	msg := "You have reached your ten_secondly_rolling limit."
	if policy == "SECONDLY" {
		msg = "You have reached your secondly limit."
	}
	return writeJSON(w, http.StatusTooManyRequests, map[string]any{"status": "error", "message": msg, "errorType": "RATE_LIMIT",
		"correlationId": uuid(), "policyName": policy})
}

func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) int {
	if err := r.ParseForm(); err != nil {
		return writeError(w, http.StatusBadRequest, "BAD_REQUEST", "bad form")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.PostForm
	if !s.opts.OAuth || f.Get("client_id") != ClientID || f.Get("client_secret") != ClientSecret {
		return writeError(w, http.StatusBadRequest, "BAD_CLIENT_ID", "missing or unknown client credentials")
	}
	switch g := f.Get("grant_type"); {
	case g == "authorization_code" && (f.Get("code") == "" || f.Get("redirect_uri") == "" || f.Has("refresh_token")):
		s.val.Report("POST /oauth/v1/token: the authorization_code grant needs code and redirect_uri, and no refresh_token")
	case g == "refresh_token" && (f.Get("refresh_token") == "" || f.Has("code")):
		s.val.Report("POST /oauth/v1/token: the refresh_token grant needs refresh_token, and no code")
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		uri, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code")) // one use
		if !ok || uri != f.Get("redirect_uri") {
			return writeError(w, http.StatusBadRequest, "BAD_AUTH_CODE", "missing or unknown auth code")
		}
		s.refresh = "refresh-" + s.newToken()
	default:
		if f.Get("refresh_token") != s.refresh {
			return writeError(w, http.StatusBadRequest, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
		}
		s.refreshes++
		if s.rotate {
			s.refresh, s.rotate = "refresh-"+s.newToken(), false
		}
	}
	s.token = s.newToken()
	return writeJSON(w, http.StatusOK, map[string]any{"access_token": s.token, "refresh_token": s.refresh, "expires_in": 1800, "token_type": "bearer"})
}

func (s *Server) privateTokenInfo(w http.ResponseWriter, r *http.Request) int {
	var in struct {
		TokenKey string `json:"tokenKey"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.OAuth || in.TokenKey != s.token {
		return writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "The access token is not valid")
	}
	return writeJSON(w, http.StatusOK, map[string]any{"userId": 7, "hubId": 4242, "appId": 99, "scopes": s.scopes})
}

func (s *Server) oauthTokenInfo(w http.ResponseWriter, r *http.Request) int {
	tok, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/oauth/v1/access-tokens/"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.OAuth || tok != s.token {
		return writeError(w, http.StatusNotFound, "EXPIRED_AUTHENTICATION", "Token not found or expired")
	}
	return writeJSON(w, http.StatusOK, map[string]any{"token": tok, "app_id": 99, "hub_id": 4242, "user_id": 7, "scopes": s.scopes,
		"token_type": "access", "expires_in": 1800})
}

// hasScope reports whether the token carries scope.
func (s *Server) hasScope(scope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.scopes, scope)
}

func missingScope(w http.ResponseWriter, scope string) int {
	return writeError(w, http.StatusForbidden, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes. One of the following scopes is required: ["+scope+"]")
}
