package pipedrive

import (
	"context"
	"errors"
	"fmt"
)

// Check verifies the token (GET /users/me) and that activities of type
// "email" can be logged (the type exists and is active in GET
// /activityTypes). It logs nothing.
func (c *Client) Check(ctx context.Context) error {
	var me struct {
		ID         int    `json:"id"`
		Name       string `json:"name"`
		ActiveFlag bool   `json:"active_flag"`
	}
	if err := c.api.call(ctx, "GET", "users/me", "/users/me", nil, nil, &me, nil); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return fmt.Errorf("%w: create a personal API token in Pipedrive (Personal preferences > API) and put it in %s", err, c.api.tokenSource())
		}
		return err
	}
	if me.ID == 0 {
		return errors.New("pipedrive users/me: no user for this token")
	}
	if !me.ActiveFlag {
		return fmt.Errorf("pipedrive: the token's user %q is deactivated; use an active user's token", me.Name)
	}
	var types []struct {
		KeyString  string `json:"key_string"`
		ActiveFlag bool   `json:"active_flag"`
	}
	if err := c.api.call(ctx, "GET", "activityTypes", "/activityTypes", nil, nil, &types, nil); err != nil {
		return err
	}
	for _, t := range types {
		if t.KeyString == "email" {
			if !t.ActiveFlag {
				return errors.New(`pipedrive: the activity type "email" is deactivated; activate it in Company settings > Activities`)
			}
			return nil
		}
	}
	return errors.New(`pipedrive: there is no activity type "email"; add one with key "email" in Company settings > Activities`)
}
