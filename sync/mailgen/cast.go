package mailgen

import (
	"bytes"
	"encoding/csv"
	"strings"
)

// Deal is an opportunity the CRM tracks for a company.
type Deal struct {
	// ID names the deal and is also its subject tag: "DEAL-1042" is
	// written as "[#DEAL-1042]".
	ID string
	// Name is the deal's display name; it must not contain ':' or ';',
	// the separators of the directory's deals column.
	Name string
	// Stage is "open", "won" or "lost".
	Stage string
	// Close is the expected close date, YYYY-MM-DD.
	Close string
}

// Contact is a person the generator writes as or to.
type Contact struct {
	// ID is the directory id ("P-001", "L-001"); empty for people the CRM
	// does not know.
	ID string
	// Name is the display name; it may be non-ASCII.
	Name string
	// Email is the address, lower case.
	Email string
	// Title is the job title used in signatures.
	Title string
}

// Company is an external organisation with its people and deals.
type Company struct {
	// ID is the directory id, "C-01".
	ID string
	// Name is the display name; it may be non-ASCII.
	Name string
	// Domain is the company's mail domain. Contacts may still use
	// freemail addresses outside it.
	Domain string
	// Lang picks localized phrases: "en" (default), "de", "fr" or "ja".
	Lang string
	// UTCOffset is the offset of its people's Date headers, in minutes.
	UTCOffset int
	// Contacts are the company's people.
	Contacts []Contact
	// Deals are the company's deals, open or not.
	Deals []Deal
}

// Newsletter is a bulk sender (RFC 2919 List-Id, RFC 2369 List-Unsubscribe).
type Newsletter struct {
	// Name is the From display name.
	Name string
	// From is the sending address.
	From string
	// ListID is the List-Id identifier without angle brackets.
	ListID string
}

// DefaultCompanies returns the built-in cast: twelve companies with 40
// people, four of whom write from freemail addresses.
func DefaultCompanies() []Company {
	return []Company{
		{ID: "C-01", Name: "Northwind Traders", Domain: "northwind.example", UTCOffset: -300,
			Contacts: []Contact{
				{"P-001", "Anna Schmidt", "anna.schmidt@northwind.example", "Head of Procurement"},
				{"P-002", "Brian Kowalski", "brian.kowalski@northwind.example", "IT Director"},
				{"P-003", "Carla Mendes", "carla.mendes@northwind.example", "Finance Manager"},
				{"P-004", "Derek Olsen", "derek.olsen@northwind.example", "Operations Lead"},
			},
			Deals: []Deal{{"DEAL-1042", "Northwind 2026 renewal", "open", "2026-10-01"}}},
		{ID: "C-02", Name: "Contoso Ltd", Domain: "contoso.example", UTCOffset: 0,
			Contacts: []Contact{
				{"P-005", "Emily Carter", "emily.carter@contoso.example", "VP Sales Operations"},
				{"P-006", "Frank Osei", "f.osei@contoso.example", "Data Analyst"},
				{"P-007", "Grace Liu", "grace.liu@contoso.example", "Procurement Specialist"},
			},
			Deals: []Deal{
				{"DEAL-1043", "Contoso analytics expansion", "open", "2026-09-15"},
				{"DEAL-1017", "Contoso pilot", "won", "2026-03-31"},
			}},
		{ID: "C-03", Name: "Fabrikam Inc", Domain: "fabrikam.example", UTCOffset: -480,
			Contacts: []Contact{
				{"P-008", "Hannah Brooks", "hannah.brooks@fabrikam.example", "CTO"},
				{"P-009", "Isaac Romero", "isaac.romero@fabrikam.example", "Engineering Manager"},
				{"P-010", "Jasmine Patel", "jasmine.patel@fabrikam.example", "Legal Counsel"},
				{"P-011", "Priya Raman", "priya.r@outlook.com", "Independent Consultant"},
			},
			Deals: []Deal{{"DEAL-1051", "Fabrikam 500 seats", "open", "2026-11-30"}}},
		{ID: "C-04", Name: "Tailspin Toys", Domain: "tailspintoys.example", UTCOffset: -360,
			Contacts: []Contact{
				{"P-012", "Kyle Henderson", "kyle@tailspintoys.example", "Founder"},
				{"P-013", "Laura Nguyen", "laura.nguyen@tailspintoys.example", "Office Manager"},
				{"P-014", "Mason Reed", "mason.reed@tailspintoys.example", "Marketing Lead"},
			}},
		{ID: "C-05", Name: "Wide World Importers", Domain: "wideworldimporters.example", UTCOffset: 600,
			Contacts: []Contact{
				{"P-015", "Nathan Clarke", "nathan.clarke@wideworldimporters.example", "Logistics Director"},
				{"P-016", "Olivia Bennett", "olivia.bennett@wideworldimporters.example", "Systems Integrator"},
				{"P-017", "Paul Whitaker", "paul.whitaker@wideworldimporters.example", "CFO"},
			},
			Deals: []Deal{{"DEAL-1060", "WWI logistics integration", "open", "2026-12-15"}}},
		{ID: "C-06", Name: "Adventure Works", Domain: "adventure-works.example", UTCOffset: -420,
			Contacts: []Contact{
				{"P-018", "Quinn Harper", "quinn.harper@adventure-works.example", "Head of Customer Success"},
				{"P-019", "Rosa Alvarez", "rosa.alvarez@adventure-works.example", "Support Team Lead"},
				{"P-020", "Samuel Price", "samuel.price@adventure-works.example", "Purchasing Manager"},
			},
			Deals: []Deal{
				{"DEAL-1064", "Adventure Works support upgrade", "open", "2026-08-31"},
				{"DEAL-1029", "Adventure Works onboarding", "lost", "2026-02-28"},
			}},
		{ID: "C-07", Name: "Sakura Robotics KK", Domain: "sakura-robotics.example", Lang: "ja", UTCOffset: 540,
			Contacts: []Contact{
				{"P-021", "山田 太郎", "t.yamada@sakura-robotics.example", "部長"},
				{"P-022", "Keiko Tanaka", "k.tanaka@sakura-robotics.example", "Project Manager"},
				{"P-023", "佐藤 花子", "h.sato@sakura-robotics.example", "Engineer"},
			},
			Deals: []Deal{{"DEAL-1067", "Sakura factory analytics", "open", "2027-02-15"}}},
		{ID: "C-08", Name: "Woodgrove Bank", Domain: "woodgrovebank.example", UTCOffset: 60,
			Contacts: []Contact{
				{"P-024", "Victoria Hughes", "victoria.hughes@woodgrovebank.example", "Chief Compliance Officer"},
				{"P-025", "William Grant", "william.grant@woodgrovebank.example", "Vendor Manager"},
				{"P-026", "Xavier Dupont", "xavier.dupont@woodgrovebank.example", "Risk Analyst"},
				{"P-027", "Yvonne Becker", "yvonne.becker@woodgrovebank.example", "IT Security Lead"},
			},
			Deals: []Deal{{"DEAL-1071", "Woodgrove compliance module", "open", "2027-01-31"}}},
		{ID: "C-09", Name: "Alpine Ski House", Domain: "alpineskihouse.example", UTCOffset: 60,
			Contacts: []Contact{
				{"P-028", "Zoë Fischer", "zoe.fischer@alpineskihouse.example", "General Manager"},
				{"P-029", "Andreas Huber", "andreas.huber@alpineskihouse.example", "Booking Systems"},
				{"P-030", "Liam O'Connor", "liam.oconnor@yahoo.com", "Seasonal IT Contractor"},
			}},
		{ID: "C-10", Name: "Coho Winery", Domain: "cohowinery.example", UTCOffset: -480,
			Contacts: []Contact{
				{"P-031", "Benjamin Ross", "ben@cohowinery.example", "Owner"},
				{"P-032", "Chloe Sanders", "chloe.sanders@cohowinery.example", "Sales Director"},
				{"P-033", "María González", "maria.gonzalez.consulting@gmail.com", "Accounting Consultant"},
			},
			Deals: []Deal{{"DEAL-1080", "Coho Winery POS integration", "open", "2026-07-31"}}},
		{ID: "C-11", Name: "Müller & Söhne GmbH", Domain: "mueller-soehne.example", Lang: "de", UTCOffset: 60,
			Contacts: []Contact{
				{"P-034", "Jürgen Müller", "j.mueller@mueller-soehne.example", "Geschäftsführer"},
				{"P-035", "Katrin Weiß", "k.weiss@mueller-soehne.example", "Einkauf"},
				{"P-036", "Tom Becker", "tbecker71@gmx.de", "Freier IT-Berater"},
			},
			Deals: []Deal{{"DEAL-1088", "Müller & Söhne Rollout", "open", "2026-10-31"}}},
		{ID: "C-12", Name: "Lumière Conseil SA", Domain: "lumiere-conseil.example", Lang: "fr", UTCOffset: 60,
			Contacts: []Contact{
				{"P-037", "Amélie Dubois", "amelie.dubois@lumiere-conseil.example", "Directrice des achats"},
				{"P-038", "François Lefèvre", "francois.lefevre@lumiere-conseil.example", "DSI"},
				{"P-039", "Hélène Moreau", "helene.moreau@lumiere-conseil.example", "Chef de projet"},
				{"P-040", "Søren Lindqvist", "soren.lindqvist@lumiere-conseil.example", "Consultant"},
			},
			Deals: []Deal{
				{"DEAL-1093", "Lumière pilote 2026", "open", "2026-09-30"},
				{"DEAL-1035", "Lumière audit", "won", "2026-01-15"},
			}},
	}
}

// DefaultStrangers returns freemail senders outside any company: one is a
// CRM lead (ID "L-001"), the others are unknown to the CRM.
func DefaultStrangers() []Contact {
	return []Contact{
		{"L-001", "Kevin Zhang", "kzhang.dev@gmail.com", "Developer"},
		{"", "Sofia Rossi", "sofia.rossi@libero.it", ""},
		{"", "José Martínez", "jmartinez77@hotmail.com", ""},
		{"", "Ayşe Yılmaz", "ayse.yilmaz@proton.me", ""},
	}
}

// DefaultNewsletters returns the built-in bulk senders.
func DefaultNewsletters() []Newsletter {
	return []Newsletter{
		{"SaaS Insider Weekly", "newsletter@saasinsider.example", "weekly.saasinsider.example"},
		{"CRM Today", "digest@crmtoday.example", "digest.crmtoday.example"},
		{"CloudHost Status", "noreply@status.cloudhost.example", "status.cloudhost.example"},
		{"Network Digest", "notifications@socialnet.example", "digest.socialnet.example"},
	}
}

// defaultColleagues returns internal staff at the owners' domain.
func defaultColleagues(domain string) []Contact {
	return []Contact{
		{"", "Dana Whitfield", "dana.whitfield@" + domain, "Head of Sales"},
		{"", "Marcus Chen", "marcus.chen@" + domain, "Account Executive"},
		{"", "Elena Petrova", "elena.petrova@" + domain, "Support Lead"},
		{"", "Raj Patel", "raj.patel@" + domain, "Finance"},
		{"", "Chloé Martin", "chloe.martin@" + domain, "Customer Success"},
	}
}

// Directory returns the default cast as CSV; see (*Generator).Directory.
func Directory() []byte {
	return directoryCSV(DefaultCompanies(), DefaultStrangers())
}

// Directory returns the generator's cast as CSV text with the header
// "email,kind,id,name,company,domain,deals":
//
//   - one "company" row per company: email empty, id and name of the
//     company, company = its id, domain = its mail domain;
//   - one "contact" row per company person: their address, id and name,
//     company = the company id, domain = the company's domain (also for
//     people writing from freemail), deals = the company's deals;
//   - one "lead" row per stranger that has an id: company and domain empty.
//
// deals lists "id:name:stage:close" entries separated by ";", for example
// "DEAL-1042:Northwind 2026 renewal:open:2026-10-01". Colleagues, owners,
// newsletters and strangers without an id are not in the directory.
func (g *Generator) Directory() []byte {
	return directoryCSV(g.opts.Companies, g.opts.Strangers)
}

func directoryCSV(companies []Company, strangers []Contact) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"email", "kind", "id", "name", "company", "domain", "deals"})
	for _, c := range companies {
		deals := make([]string, 0, len(c.Deals))
		for _, d := range c.Deals {
			deals = append(deals, strings.Join([]string{d.ID, d.Name, d.Stage, d.Close}, ":"))
		}
		dl := strings.Join(deals, ";")
		_ = w.Write([]string{"", "company", c.ID, c.Name, c.ID, c.Domain, dl})
		for _, p := range c.Contacts {
			if p.ID == "" {
				continue
			}
			_ = w.Write([]string{p.Email, "contact", p.ID, p.Name, c.ID, c.Domain, dl})
		}
	}
	for _, p := range strangers {
		if p.ID != "" {
			_ = w.Write([]string{p.Email, "lead", p.ID, p.Name, "", "", ""})
		}
	}
	// Writes to a bytes.Buffer cannot fail.
	w.Flush()
	return buf.Bytes()
}
