package hubspottest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

var readScope = map[string]string{"contacts": "crm.objects.contacts.read", "companies": "crm.objects.companies.read",
	"deals": "crm.objects.deals.read", "emails": "sales-email-read"}

// render is the API form of o with only the asked properties (HubSpot
// returns hs_object_id, hs_createdate and hs_lastmodifieddate always).
func render(o *object, props []string) map[string]any {
	p := map[string]any{}
	for _, k := range []string{"hs_object_id", "hs_createdate", "hs_lastmodifieddate"} {
		p[k] = o.props[k]
	}
	for _, k := range props {
		if v, ok := o.props[k]; ok {
			p[k] = v
		} else {
			p[k] = nil
		}
	}
	out := map[string]any{"id": strconv.FormatInt(o.id, 10), "properties": p,
		"createdAt": o.created.Format(time.RFC3339Nano), "updatedAt": o.updated.Format(time.RFC3339Nano), "archived": o.archived}
	if o.archived {
		out["archivedAt"] = o.archivedAt.Format(time.RFC3339Nano)
	}
	return out
}

type filter struct {
	PropertyName string   `json:"propertyName"`
	Operator     string   `json:"operator"`
	Value        string   `json:"value"`
	Values       []string `json:"values"`
}

func (f filter) match(o *object) bool {
	v, has := o.props[f.PropertyName]
	switch f.Operator {
	case "EQ":
		return has && strings.EqualFold(v, f.Value)
	case "NEQ":
		return !strings.EqualFold(v, f.Value)
	case "IN":
		for _, x := range f.Values {
			if has && strings.EqualFold(v, x) {
				return true
			}
		}
		return false
	case "HAS_PROPERTY":
		return has && v != ""
	case "NOT_HAS_PROPERTY":
		return !has || v == ""
	}
	return false // other operators are not used by mailsync
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, typ string) int {
	if !s.hasScope(readScope[typ]) {
		return missingScope(w, readScope[typ])
	}
	var in struct {
		FilterGroups []struct {
			Filters []filter `json:"filters"`
		} `json:"filterGroups"`
		Properties []string `json:"properties"`
		Limit      int      `json:"limit"`
		After      string   `json:"after"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "invalid JSON")
	}
	total := 0
	for _, g := range in.FilterGroups {
		total += len(g.Filters)
		for _, f := range g.Filters {
			if f.Operator == "IN" && len(f.Values) == 0 {
				return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "IN needs values")
			}
		}
	}
	if total > 25 { // HubSpot: at most 25 filters in all
		return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "too many filters")
	}
	if in.Limit == 0 {
		in.Limit = 10
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*object
	for _, o := range s.objects[typ] {
		if o.archived {
			continue // archived records are not searchable
		}
		if time.Since(o.created) < s.opts.SearchLag {
			continue // not in the search index yet
		}
		ok := len(in.FilterGroups) == 0
		for _, g := range in.FilterGroups {
			all := true
			for _, f := range g.Filters {
				all = all && f.match(o)
			}
			ok = ok || all
		}
		if ok {
			hits = append(hits, o)
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].id < hits[j].id })
	off, _ := strconv.Atoi(in.After)
	page := map[string]any{"total": len(hits)}
	res := []any{}
	for i := off; i < len(hits) && i < off+in.Limit; i++ {
		res = append(res, render(hits[i], in.Properties))
	}
	page["results"] = res
	if off+in.Limit < len(hits) {
		page["paging"] = map[string]any{"next": map[string]any{"after": strconv.Itoa(off + in.Limit)}}
	}
	return writeJSON(w, http.StatusOK, page)
}

var assocTarget = map[int]string{EmailToContact: "contacts", EmailToCompany: "companies", EmailToDeal: "deals"}

func (s *Server) createEmails(w http.ResponseWriter, r *http.Request) int {
	if !s.hasScope("crm.objects.contacts.write") {
		return missingScope(w, "crm.objects.contacts.write")
	}
	var in struct {
		Inputs []struct {
			Properties   map[string]string `json:"properties"`
			Associations []struct {
				To struct {
					ID string `json:"id"`
				} `json:"to"`
				Types []struct {
					Category string `json:"associationCategory"`
					TypeID   int    `json:"associationTypeId"`
				} `json:"types"`
			} `json:"associations"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "invalid JSON")
	}
	started := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	// HubSpot checks the whole batch before it creates anything: an
	// association to a record that does not exist, or with a type id that
	// does not fit the record's object, fails the batch with 400.
	for i, e := range in.Inputs {
		for k := range e.Properties {
			if !knownEmailProperty(k) && k != s.opts.KeyProperty {
				return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Property values were not valid: Property \""+k+"\" does not exist (input "+strconv.Itoa(i)+")")
			}
		}
		for _, a := range e.Associations {
			id, _ := strconv.ParseInt(a.To.ID, 10, 64)
			for _, t := range a.Types {
				typ := assocTarget[t.TypeID]
				if t.Category != "HUBSPOT_DEFINED" || typ == "" {
					return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "invalid association type "+strconv.Itoa(t.TypeID))
				}
				if o := s.objects[typ][id]; o == nil || o.archived {
					return writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "No "+typ+" with id "+a.To.ID+" exists (association type "+strconv.Itoa(t.TypeID)+")")
				}
			}
		}
	}
	res := []any{}
	for _, e := range in.Inputs {
		id := s.addLocked("emails", e.Properties)
		for _, a := range e.Associations {
			to, _ := strconv.ParseInt(a.To.ID, 10, 64)
			for _, t := range a.Types {
				s.associateLocked("emails", id, assocTarget[t.TypeID], to, t.TypeID)
			}
		}
		names := make([]string, 0, len(e.Properties))
		for k := range e.Properties {
			names = append(names, k)
		}
		res = append(res, render(s.objects["emails"][id], names))
	}
	// HubSpot does not promise the order of batch results.
	for i := range res {
		j := len(res) - 1 - i
		if i >= j {
			break
		}
		if i%2 == 0 {
			res[i], res[j] = res[j], res[i]
		}
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"status": "COMPLETE", "results": res,
		"startedAt": started.Format(time.RFC3339Nano), "completedAt": time.Now().UTC().Format(time.RFC3339Nano)})
}

// knownEmailProperty lists the email properties HubSpot defines that a
// create may set.
func knownEmailProperty(k string) bool {
	switch k {
	case "hs_timestamp", "hubspot_owner_id", "hs_email_direction", "hs_email_status", "hs_email_subject",
		"hs_email_text", "hs_email_html", "hs_email_headers", "hs_attachment_ids":
		return true
	}
	return false
}

func (s *Server) archiveEmails(w http.ResponseWriter, r *http.Request) int {
	var in struct {
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	for _, x := range in.Inputs {
		s.Archive(x.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (s *Server) readDeals(w http.ResponseWriter, r *http.Request) int {
	if !s.hasScope("crm.objects.deals.read") {
		return missingScope(w, "crm.objects.deals.read")
	}
	var in struct {
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
		Properties []string `json:"properties"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	started := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	res := []any{}
	var missing []string
	for _, x := range in.Inputs {
		id, _ := strconv.ParseInt(x.ID, 10, 64)
		if o := s.objects["deals"][id]; o != nil && !o.archived {
			res = append(res, render(o, in.Properties))
		} else {
			missing = append(missing, x.ID)
		}
	}
	out := map[string]any{"status": "COMPLETE", "results": res, "startedAt": started.Format(time.RFC3339Nano), "completedAt": time.Now().UTC().Format(time.RFC3339Nano)}
	if len(missing) > 0 {
		out["numErrors"] = 1
		out["errors"] = []any{map[string]any{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some DEAL objects, they may be deleted or not exist.",
			"context": map[string]any{"ids": missing}, "errors": []any{}, "links": map[string]any{}}}
		return writeJSON(w, http.StatusMultiStatus, out)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) listEmails(w http.ResponseWriter, r *http.Request) int {
	if !s.hasScope("sales-email-read") {
		return missingScope(w, "sales-email-read")
	}
	q := r.URL.Query()
	archived := q.Get("archived") == "true"
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = 10
	}
	var props []string
	if p := q.Get("properties"); p != "" {
		props = strings.Split(p, ",")
	}
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*object
	for _, o := range s.objects["emails"] {
		if o.archived == archived && o.id > after {
			hits = append(hits, o)
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].id < hits[j].id })
	res := []any{}
	for i := 0; i < len(hits) && i < limit; i++ {
		res = append(res, render(hits[i], props))
	}
	out := map[string]any{"results": res}
	if len(hits) > limit {
		out["paging"] = map[string]any{"next": map[string]any{"after": strconv.FormatInt(hits[limit-1].id, 10)}}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) readAssociations(w http.ResponseWriter, r *http.Request, from, to string) int {
	if !s.hasScope(readScope[from]) || !s.hasScope(readScope[to]) {
		return missingScope(w, readScope[to])
	}
	var in struct {
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	started := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	res := []any{}
	var none []string
	for _, x := range in.Inputs {
		id, _ := strconv.ParseInt(x.ID, 10, 64)
		as := s.assocs[assocKey(from, id, to)]
		if len(as) == 0 {
			none = append(none, x.ID)
			continue
		}
		tos := []any{}
		for _, a := range as {
			if o := s.objects[to][a.to]; o == nil || o.archived {
				continue
			}
			tos = append(tos, map[string]any{"toObjectId": a.to, "associationTypes": []any{map[string]any{"category": "HUBSPOT_DEFINED", "typeId": a.typeID, "label": nil}}})
		}
		res = append(res, map[string]any{"from": map[string]any{"id": x.ID}, "to": tos})
	}
	out := map[string]any{"status": "COMPLETE", "results": res, "startedAt": started.Format(time.RFC3339Nano), "completedAt": time.Now().UTC().Format(time.RFC3339Nano)}
	if len(none) > 0 {
		// HubSpot answers 207 with an error entry for inputs that have no
		// associations of the type.
		out["numErrors"] = len(none)
		errs := []any{}
		for _, id := range none {
			errs = append(errs, map[string]any{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "No " + to + " is associated with " + from + " " + id,
				"context": map[string]any{"fromObjectId": []string{id}}, "errors": []any{}, "links": map[string]any{}})
		}
		out["errors"] = errs
		return writeJSON(w, http.StatusMultiStatus, out)
	}
	return writeJSON(w, http.StatusOK, out)
}
