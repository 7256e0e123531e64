package dovecottest

import (
	"net"
	"strconv"
)

// WithLMTP opens an LMTP listener (RFC 2033) on 127.0.0.1 (LMTPAddr), so a
// real MTA started by a test can deliver into the users' INBOXes. Mail for
// user@any.domain goes to the user named by the local part.
func WithLMTP() Option {
	return func(o *options) { o.lmtp = true }
}

// LMTPAddr returns the LMTP address "127.0.0.1:port", or "" without WithLMTP.
func (s *Server) LMTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lmtpPort == 0 {
		return ""
	}
	return net.JoinHostPort(s.Host(), strconv.Itoa(s.lmtpPort))
}
