package salesforce

import "time"

// SetClock makes the adapter read time from now (the unlink poll's minutes).
func SetClock(c *Client, now func() time.Time) { c.api.now = now }
