// Package oauth logs mailboxes in with OAuth 2.0 (Gmail, Microsoft 365, any
// provider with a device authorization and a token endpoint) and keeps
// their tokens alive.
//
// The pieces:
//
//   - Provider talks to an account's identity provider: the device
//     authorization grant for `mailsync auth login` (RFC 8628), refresh
//     (RFC 6749 §6) and client credentials (app-only Microsoft 365).
//   - Vault seals token records into the state file's key-value area with
//     AES-256-GCM (key from tokens.key_file), one record per account, each
//     update in one transaction.
//   - Manager hands out access tokens: it refreshes them ahead of expiry,
//     one refresh at a time per account however many folder workers ask,
//     persists rotated refresh tokens, backs off on failures and, after
//     MaxAttempts invalid_grant answers, marks the account "reauth needed"
//     and asks the identity provider nothing more until a new login.
//   - Manager.Authenticator plugs into worker.Deps.Authenticator: it logs
//     in with OAUTHBEARER (RFC 7628) when the server offers it, else
//     XOAUTH2, and tells a stale cached token (transient: drop it, re-dial)
//     from a refused fresh one (an auth failure).
//
// Token values never appear in errors, logs, String output or status.
package oauth
