package imapconn

import (
	"errors"
	"fmt"
	"testing"
)

// credErr is an Authenticator error in the shape of package oauth's.
type credErr struct{ refused bool }

func (e *credErr) Error() string           { return "token problem" }
func (e *credErr) CredentialRefused() bool { return e.refused }

func TestIsAuthFailureCredentialError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &credErr{refused: true}, true},
		{"wrapped by Dial", fmt.Errorf("imap 127.0.0.1:1: authenticate: %w", &credErr{refused: true}), true},
		{"not refused", &credErr{refused: false}, false},
		{"plain error", errors.New("dial: connection refused"), false},
	}
	for _, tt := range tests {
		if got := IsAuthFailure(tt.err); got != tt.want {
			t.Errorf("%s: IsAuthFailure() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
