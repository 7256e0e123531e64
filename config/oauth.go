package config

// OAuth2 configures an account that logs in with OAuth 2.0 (auth: oauth2).
// Filled in by the OAuth2 work (issue 6).
type OAuth2 struct{}

func (o *OAuth2) validate(path string) []error { return nil }

// Tokens says how OAuth2 tokens are protected at rest.
type Tokens struct{}

func (t *Tokens) validate(path string) []error { return nil }
