package dovecottest

// Option changes how Start configures a Dovecot instance.
type Option func(*options)

// options is what the Option functions fill in before Start writes the config.
type options struct {
	users      map[string]string
	tls        bool
	noStartTLS bool
	noKeywords bool
	lmtp       bool
	extra      []string
	// userUIDs: each user's mail is owned by its own uid (WithUserUIDs).
	userUIDs int
	// oauth2Introspection is set by WithOAuth2 (oauth2.go).
	oauth2Introspection string
}

// DefaultUser and DefaultPassword are the account a Server has when no
// WithUsers option is given.
const (
	DefaultUser     = "alice"
	DefaultPassword = "alice-pass"
)

func defaultOptions() *options {
	return &options{users: map[string]string{DefaultUser: DefaultPassword}}
}

// WithUsers replaces the default account with the given user→password map.
// Passwords are stored in plain text ({PLAIN}) in the instance's passwd-file;
// names may not contain ':', '/' or line breaks, passwords not ':' or line
// breaks.
func WithUsers(users map[string]string) Option {
	return func(o *options) {
		o.users = make(map[string]string, len(users))
		for u, p := range users {
			o.users[u] = p
		}
	}
}

// WithTLS generates a throwaway CA and a server certificate for 127.0.0.1,
// ::1 and localhost, offers STARTTLS on the plain port and opens an
// implicit-TLS port (TLSPort). Clients trust Server.CACertPEM / Server.CAFile.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithoutStartTLS makes the plain port neither advertise nor accept STARTTLS
// (Dovecot's ssl=no). Dovecot 2.3 cannot serve implicit TLS while refusing
// STARTTLS, so combining it with WithTLS fails the test.
func WithoutStartTLS() Option {
	return func(o *options) { o.noStartTLS = true }
}

// WithKeywordsDisabled makes every mailbox refuse custom keywords: SELECT
// answers PERMANENTFLAGS without "\*" and STORE of a keyword is silently
// dropped. Dovecot 2.3 has no switch for keywords alone (only its imapc
// backend ever sets disallow_new_keywords), so this denies the ACL "w" right
// through a global ACL file; as a side effect \Answered, \Flagged and \Draft
// are not permanent either, and PERMANENTFLAGS is (\Deleted \Seen).
func WithKeywordsDisabled() Option {
	return func(o *options) { o.noKeywords = true }
}

// WithUserUIDs gives every user a uid of its own, base, base+1, ... in
// name order, instead of one mail uid for all. Dovecot's inotify instances
// are limited per uid (fs.inotify.max_user_instances, 128 by default):
// beyond that IDLE silently degrades to polling, so tests with many
// concurrent IDLE sessions need it. Only root can run it; Start fails
// otherwise. The uids need no /etc/passwd entries.
func WithUserUIDs(base int) Option {
	return func(o *options) { o.userUIDs = base }
}

// WithConfig appends raw dovecot.conf lines after the generated ones, e.g. an
// extra passdb block. Later settings override earlier ones in Dovecot.
func WithConfig(extra string) Option {
	return func(o *options) { o.extra = append(o.extra, extra) }
}
