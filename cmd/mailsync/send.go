package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/sink"
)

// sendClientTimeout outlasts the daemon's own bound on one send (SMTP may
// take 10 minutes to answer the data), so the CLI never gives up first
// and leaves an admin guessing.
const sendClientTimeout = 16 * time.Minute

func (m *Main) sendCommand() *cobra.Command {
	var (
		cfgPath, account, key, textFile string
		records                         []string
		printJSON                       bool
		req                             outbound.Request
	)
	cmd := &cobra.Command{
		Use:   "send --account ID --to ADDR --subject S --text T",
		Short: "Send a test message through the running daemon's send API",
		Long: `Send posts a message to the running daemon's send API (POST
/v1/accounts/{id}/send on admin.listen, with the bearer token from
admin.token_file), exactly as a CRM would: the daemon submits it over the
account's SMTP server, files a copy in its Sent folder and records it in the
ledger. Use it to check an account's SMTP settings end to end.

Without --idempotency-key a fresh key is made up and printed; run the same
command with that key to see a retry answered without sending again.`,
		Example: `  mailsync send --account sales --to bob@example.com --subject "Test" --text "Hello" \
      --record deal:D-42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			for _, r := range records {
				kind, id, ok := strings.Cut(r, ":")
				if !ok || kind == "" || id == "" {
					return &exitError{code: exitUsage, err: fmt.Errorf("--record %q: want kind:id, e.g. deal:D-42", r)}
				}
				req.Records = append(req.Records, sink.Record{Kind: sink.Kind(kind), ID: id})
			}
			if textFile != "" {
				b, err := os.ReadFile(textFile)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--text-file: %w", err)}
				}
				req.Text = string(b)
			}
			if key == "" {
				key = newCLIKey()
				fmt.Fprintf(m.Stderr, "idempotency key: %s\n", key)
			}
			req.IdempotencyKey = key
			return m.postSend(cmd.Context(), cfg, account, &req, printJSON)
		},
	}
	f := cmd.Flags()
	configFlag(cmd, &cfgPath, "configuration file (names admin.listen and admin.token_file)")
	f.StringVarP(&account, "account", "a", "", "account id (required)")
	f.StringVar(&req.From, "from", "", "From address (default: the account's)")
	f.StringArrayVar(&req.To, "to", nil, "recipient (repeatable)")
	f.StringArrayVar(&req.Cc, "cc", nil, "Cc recipient (repeatable)")
	f.StringArrayVar(&req.Bcc, "bcc", nil, "Bcc recipient (repeatable)")
	f.StringVarP(&req.Subject, "subject", "s", "", "subject")
	f.StringVar(&req.Text, "text", "", "plain-text body")
	f.StringVar(&textFile, "text-file", "", "read the plain-text body from this file")
	f.StringVar(&req.HTML, "html", "", "HTML body")
	f.StringArrayVar(&records, "record", nil, "CRM record kind:id the message belongs to (repeatable)")
	f.StringVar(&key, "idempotency-key", "", "idempotency key (default: a new one, printed)")
	f.BoolVar(&printJSON, "json", false, "print the API's JSON answer")
	cmd.MarkFlagRequired("account")
	cmd.MarkFlagsMutuallyExclusive("text", "text-file")
	return cmd
}

// postSend sends req to the daemon and prints the outcome.
func (m *Main) postSend(ctx context.Context, cfg *config.Config, account string, req *outbound.Request, printJSON bool) error {
	endpoint, err := sendURL(cfg.Admin.Listen, account)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	token, err := readToken(cfg.Admin.TokenFile)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sendClientTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Authorization", "Bearer "+token)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("send: %w (is the daemon running with admin.listen %s?)", err, cfg.Admin.Listen)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("send: read the answer: %w", err)
	}
	if printJSON {
		fmt.Fprintln(m.Stdout, strings.TrimSpace(string(raw)))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return fmt.Errorf("send: HTTP %d: %s", resp.StatusCode, e.Error)
	}
	if printJSON {
		return nil
	}
	var res outbound.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("send: the answer is not a result: %w", err)
	}
	if res.IdempotentReplay {
		fmt.Fprintf(m.Stdout, "already sent earlier with this idempotency key; nothing was sent again\n")
	}
	fmt.Fprintf(m.Stdout, "sent <%s>\n", res.MessageID)
	switch {
	case res.SentFolder != "" && res.UID != 0:
		fmt.Fprintf(m.Stdout, "copy in %q, uid %d\n", res.SentFolder, res.UID)
	case res.SentFolder != "":
		fmt.Fprintf(m.Stdout, "copy in %q\n", res.SentFolder)
	default:
		fmt.Fprintf(m.Stdout, "no copy filed by mailsync (append_to_sent: false)\n")
	}
	fmt.Fprintf(m.Stdout, "ledger key %s\n", res.Key)
	return nil
}

// sendURL is the send endpoint on the admin listener. A wildcard listen
// address is reached on loopback.
func sendURL(listen, account string) (string, error) {
	if listen == "" {
		return "", errors.New("admin.listen is not set: the send API is served on the admin listener")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin.listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, port),
		Path: "/v1/accounts/" + account + "/send", RawPath: "/v1/accounts/" + url.PathEscape(account) + "/send"}
	return u.String(), nil
}

// readToken reads the API token the daemon checks requests against.
func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("admin.token_file is not set: the send API refuses every request without it")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w (run as a user that may read it)", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin.token_file %s is empty", path)
	}
	return tok, nil
}

func newCLIKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "cli-" + hex.EncodeToString(b[:])
}
