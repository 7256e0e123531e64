package worker

// HeaderOf exposes headerOf to the external tests, which hold it to what
// Dovecot's BODY[HEADER] returns.
var HeaderOf = headerOf
