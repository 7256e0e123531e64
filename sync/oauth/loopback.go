package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// LoopbackLogin runs the authorization-code grant for a native app
// (RFC 8252 §7.3): it listens on the loopback address of conf.RedirectURL,
// calls show with the URL to open in a browser, waits for the CRM to
// redirect back with a code (checking the state parameter), and exchanges
// the code for tokens, with a PKCE S256 challenge when pkce is set. It
// returns when ctx ends, after the listener is closed.
func LoopbackLogin(ctx context.Context, conf oauth2.Config, pkce bool, hc *http.Client, show func(authURL string)) (*oauth2.Token, error) {
	ru, err := url.Parse(conf.RedirectURL)
	if err != nil || ru.Scheme != "http" || ru.Port() == "" {
		return nil, fmt.Errorf("redirect URL %q: must be http://localhost:PORT/PATH or http://127.0.0.1:PORT/PATH", conf.RedirectURL)
	}
	host := ru.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("redirect URL %q: the host must be loopback (localhost, 127.0.0.1 or [::1])", conf.RedirectURL)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, ru.Port()))
	if err != nil {
		return nil, fmt.Errorf("listen for the sign-in redirect: %w", err)
	}
	state := randomToken()
	verifier := oauth2.GenerateVerifier()
	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	path := ru.Path
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			http.Error(w, "This sign-in link is stale or not for this login. Start mailsync auth login again.", http.StatusBadRequest)
			return // a stray request does not end the wait
		case q.Get("error") != "":
			res.err = fmt.Errorf("the CRM refused the sign-in: %s %s", q.Get("error"), q.Get("error_description"))
			http.Error(w, "Sign-in refused: "+q.Get("error")+". See the terminal.", http.StatusForbidden)
		case q.Get("code") == "":
			res.err = errors.New("the CRM redirected back without a code")
			http.Error(w, "No code in the redirect. See the terminal.", http.StatusBadRequest)
		default:
			res.code = q.Get("code")
			fmt.Fprintln(w, "Signed in. You can close this tab and return to the terminal.")
		}
		select {
		case got <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	opts := []oauth2.AuthCodeOption{}
	if pkce {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	show(conf.AuthCodeURL(state, opts...))
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the sign-in: %w", context.Cause(ctx))
	}
	if res.err != nil {
		return nil, res.err
	}
	if hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	var xopts []oauth2.AuthCodeOption
	if pkce {
		xopts = append(xopts, oauth2.VerifierOption(verifier))
	}
	tok, err := conf.Exchange(ctx, res.code, xopts...)
	if err != nil {
		return nil, fmt.Errorf("exchange the sign-in code: %w", endpointError(err))
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("the CRM returned no refresh token (the app needs the offline/refresh_token scope)")
	}
	return tok, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
