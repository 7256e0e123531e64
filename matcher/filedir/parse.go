package filedir

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Row is one record as exported from a CRM. Contacts and leads need an
// email; a company may list domains separated by ";" or ","; a deal names
// the contact (by id), the email of a contact, or the company it belongs to.
type Row struct {
	Kind    string `yaml:"kind"`
	ID      string `yaml:"id"`
	Name    string `yaml:"name"`
	Email   string `yaml:"email"`
	Contact string `yaml:"contact"`
	Company string `yaml:"company"`
	Domain  string `yaml:"domain"`
	Open    string `yaml:"open"`
	Updated string `yaml:"updated"`
	// Deals lists a contact's, lead's or company's deals inline, as
	// "id:name:stage:close" entries separated by ";" (stage and close as
	// the open and updated fields of a deal row), the form CRM exports
	// and the demo's directory use.
	Deals string `yaml:"deals"`

	// Line is the row's line in its file; lines holds the line of each
	// field where it differs (YAML).
	Line  int            `yaml:"-"`
	lines map[string]int `yaml:"-"`
}

func (r *Row) lineOf(field string) int {
	if l, ok := r.lines[field]; ok {
		return l
	}
	return r.Line
}

// RowError is a bad row: the file, the line and the field at fault.
type RowError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: field %s: %v", e.File, e.Line, e.Field, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// columns are the CSV header names understood, in Row order.
var columns = []string{"kind", "id", "name", "email", "contact", "company", "domain", "open", "updated", "deals"}

// ParseCSV reads rows from a CSV file whose first line names the columns
// (any order, case-insensitive; unknown columns are ignored). name is used
// in errors.
func ParseCSV(r io.Reader, name string) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // short rows are checked below, with a better message
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, csvErr(name, err)
	}
	idx := map[string]int{}
	for i, h := range head {
		idx[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, c := range []string{"kind", "id"} {
		if _, ok := idx[c]; !ok {
			return nil, &RowError{File: name, Line: 1, Field: c, Err: errors.New("column missing from header")}
		}
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(col string) string {
			i, ok := idx[col]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		row := Row{Line: line}
		for i, f := range row.fields() {
			*f = get(columns[i])
		}
		rows = append(rows, row)
	}
}

func csvErr(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &RowError{File: name, Line: pe.Line, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (r *Row) fields() []*string {
	return []*string{&r.Kind, &r.ID, &r.Name, &r.Email, &r.Contact, &r.Company, &r.Domain, &r.Open, &r.Updated, &r.Deals}
}

// ParseYAML reads rows from a YAML document of the form
//
//	records:
//	  - {kind: contact, id: c1, name: Ann, email: ann@acme.com, company: co1}
//
// with the same fields as the CSV columns.
func ParseYAML(r io.Reader, name string) ([]Row, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &RowError{File: name, Line: doc.Line, Err: errors.New("want a mapping with a records list")}
	}
	top := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "records" {
			list = top.Content[i+1]
		}
	}
	if list == nil {
		return nil, &RowError{File: name, Line: top.Line, Field: "records", Err: errors.New("missing")}
	}
	if list.Kind != yaml.SequenceNode {
		return nil, &RowError{File: name, Line: list.Line, Field: "records", Err: errors.New("want a list")}
	}
	rows := make([]Row, 0, len(list.Content))
	for _, n := range list.Content {
		var row Row
		if n.Kind != yaml.MappingNode {
			return nil, &RowError{File: name, Line: n.Line, Err: errors.New("record is not a mapping")}
		}
		if err := n.Decode(&row); err != nil {
			return nil, &RowError{File: name, Line: n.Line, Err: err}
		}
		row.Line = n.Line
		row.lines = map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			row.lines[n.Content[i].Value] = n.Content[i].Line
		}
		for _, f := range row.fields() {
			*f = strings.TrimSpace(*f)
		}
		rows = append(rows, row)
	}
	return rows, nil
}
