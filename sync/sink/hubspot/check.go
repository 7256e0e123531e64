package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// RequiredScopes are what delivery needs: reading contacts, companies and
// deals for the directory, writing contacts' activities (HubSpot ties
// engagement writes to the contacts scope), and reading emails (the key
// search and the recycling bin).
var RequiredScopes = []string{
	"crm.objects.contacts.read",
	"crm.objects.contacts.write",
	"crm.objects.companies.read",
	"crm.objects.deals.read",
	"sales-email-read",
}

// Check implements sink.Checker: the token is valid, carries
// RequiredScopes, and the key property exists on emails. It logs nothing.
func (c *Client) Check(ctx context.Context) error {
	if err := c.open(); err != nil {
		return err
	}
	scopes, err := c.scopes(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, s := range RequiredScopes {
		if !slices.Contains(scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("hubspot: the %s token lacks the scopes %s: add them to the app and issue a new token", c.auth.kind(), strings.Join(missing, ", "))
	}
	status, err := c.call(ctx, "read_property", http.MethodGet, "/crm/v3/properties/emails/"+url.PathEscape(c.cfg.KeyProperty), nil, nil, nil)
	if status == http.StatusNotFound {
		return fmt.Errorf("hubspot: emails have no property %q: create it (single-line text) as the README says; mailsync finds logged emails by it", c.cfg.KeyProperty)
	}
	if err != nil {
		return fmt.Errorf("hubspot: read the key property %s: %w", c.cfg.KeyProperty, err)
	}
	return nil
}

// scopes asks HubSpot what the token may do: the private-app token-info
// endpoint, or the OAuth access-token metadata.
func (c *Client) scopes(ctx context.Context) ([]string, error) {
	tok, err := c.auth.token(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.wait(ctx, false); err != nil {
		return nil, err
	}
	var (
		status int
		data   []byte
	)
	if c.auth.kind() == "oauth2" {
		status, data, _, err = c.send(ctx, "token_info", http.MethodGet, c.cfg.BaseURL+"/oauth/v1/access-tokens/"+url.PathEscape(tok), "", nil)
	} else {
		body, _ := json.Marshal(map[string]string{"tokenKey": tok})
		status, data, _, err = c.send(ctx, "token_info", http.MethodPost, c.cfg.BaseURL+"/oauth/v2/private-apps/get/access-token-info", "", body)
	}
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: %w", ErrReauth, parseError("token_info", status, data))
	}
	var v struct {
		Scopes []string `json:"scopes"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("hubspot token_info: decode answer: %w", err)
	}
	return v.Scopes, nil
}
