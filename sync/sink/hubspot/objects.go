package hubspot

import (
	"context"
	"net/http"
	"strconv"
)

// The API's shapes, as far as the adapter reads and writes them.

type filter struct {
	PropertyName string   `json:"propertyName"`
	Operator     string   `json:"operator"`
	Value        string   `json:"value,omitempty"`
	Values       []string `json:"values,omitempty"`
}

type filterGroup struct {
	Filters []filter `json:"filters"`
}

type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups"`
	Properties   []string      `json:"properties,omitempty"`
	Limit        int           `json:"limit,omitempty"`
	After        string        `json:"after,omitempty"`
}

type object struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
}

func (o object) prop(name string) string {
	if v := o.Properties[name]; v != nil {
		return *v
	}
	return ""
}

type paging struct {
	Next *struct {
		After string `json:"after"`
	} `json:"next"`
}

type page struct {
	Results []object `json:"results"`
	Paging  *paging  `json:"paging"`
}

func (p page) after() string {
	if p.Paging != nil && p.Paging.Next != nil {
		return p.Paging.Next.After
	}
	return ""
}

// maxIn is how many values HubSpot takes in one IN filter; maxBatch how
// many inputs one batch call takes; maxPages bounds a search's paging.
const (
	maxIn       = 100
	maxBatch    = 100
	maxPages    = 20
	searchLimit = 200
)

// searchIn finds the records of typ whose prop is one of values (at most
// maxIn), following the paging.
func (c *Client) searchIn(ctx context.Context, typ, prop string, values, props []string) ([]object, error) {
	req := searchRequest{
		FilterGroups: []filterGroup{{Filters: []filter{{PropertyName: prop, Operator: "IN", Values: values}}}},
		Properties:   props, Limit: searchLimit,
	}
	var out []object
	for range maxPages {
		var p page
		if _, err := c.call(ctx, "search_"+typ, http.MethodPost, "/crm/v3/objects/"+typ+"/search", nil, req, &p); err != nil {
			return nil, err
		}
		out = append(out, p.Results...)
		if req.After = p.after(); req.After == "" {
			break
		}
	}
	return out, nil
}

type idInput struct {
	ID string `json:"id"`
}

type assocResult struct {
	From idInput `json:"from"`
	To   []struct {
		ToObjectID int64 `json:"toObjectId"`
	} `json:"to"`
}

// associated returns, for each id of fromType, the ids of toType records
// associated with it (v4 batch read).
func (c *Client) associated(ctx context.Context, fromType, toType string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	for len(ids) > 0 {
		n := min(len(ids), maxBatch)
		in := struct {
			Inputs []idInput `json:"inputs"`
		}{}
		for _, id := range ids[:n] {
			in.Inputs = append(in.Inputs, idInput{ID: id})
		}
		ids = ids[n:]
		var res struct {
			Results []assocResult `json:"results"`
		}
		// 207 lists inputs without associations as errors: not a failure.
		if _, err := c.call(ctx, "assoc_"+fromType+"_"+toType, http.MethodPost, "/crm/v4/associations/"+fromType+"/"+toType+"/batch/read", nil, in, &res); err != nil {
			return nil, err
		}
		for _, r := range res.Results {
			for _, t := range r.To {
				out[r.From.ID] = append(out[r.From.ID], strconv.FormatInt(t.ToObjectID, 10))
			}
		}
	}
	return out, nil
}

// readDeals reads deals by id (missing ones are left out).
func (c *Client) readDeals(ctx context.Context, ids []string) ([]object, error) {
	var out []object
	for len(ids) > 0 {
		n := min(len(ids), maxBatch)
		in := struct {
			Inputs                []idInput `json:"inputs"`
			Properties            []string  `json:"properties"`
			PropertiesWithHistory []string  `json:"propertiesWithHistory"`
		}{Properties: []string{"dealname", "hs_is_closed", "hs_lastmodifieddate"}, PropertiesWithHistory: []string{}}
		for _, id := range ids[:n] {
			in.Inputs = append(in.Inputs, idInput{ID: id})
		}
		ids = ids[n:]
		var res page
		if _, err := c.call(ctx, "read_deals", http.MethodPost, "/crm/v3/objects/deals/batch/read", nil, in, &res); err != nil {
			return nil, err
		}
		out = append(out, res.Results...)
	}
	return out, nil
}
