package mailgen

// Phrase banks. Placeholders in braces are filled by (*Generator).fill:
// {first} recipient's first name, {me} sender's first name, {company} the
// external company, {myco} the owners' company, {product}, {qty},
// {amount}, {day}, {invoice}, {ticket}, {issue}, {deal} deal name.

// topic is one kind of business conversation. Lines are written in the
// voice of the owners' side ("our") or the customer's ("cust").
type topic struct {
	subjects  []string
	ourOpen   []string // the owners start the thread
	custOpen  []string // the customer starts the thread
	ourReply  []string
	custReply []string
	files     []string // attachment name templates; extension picks the type
	support   bool     // fits a support mailbox rather than a sales one
}

var topics = []topic{
	{
		subjects: []string{"Proposal for {company}", "Updated proposal – {product}", "Revised quote for {qty} seats"},
		ourOpen: []string{
			"As promised, please find attached our proposal for {product}. It covers {qty} seats, onboarding and the first year of premium support.",
			"Following our call on {day}, I have updated the quote: the total now comes to {amount} per year, including the volume discount we discussed.",
		},
		custOpen: []string{
			"We are looking at {product} for about {qty} users. Could you send us a proposal including onboarding?",
			"Our budget for next year is being finalised. Can you send an updated quote for {qty} seats by {day}?",
		},
		ourReply: []string{
			"Good question – the price is locked for the second year as well, and the onboarding is now a separate line item.",
			"Quarterly payments are fine. I have updated the proposal accordingly, see attached.",
			"Thanks, I will wait for your feedback. Happy to walk your CFO through the numbers.",
		},
		custReply: []string{
			"Thanks for the proposal. Our finance team is reviewing it and we should have feedback by {day}.",
			"Could you split the onboarding cost out as a separate line item? That makes approval much easier on our side.",
			"We are broadly happy with the terms. One open point is the payment schedule – quarterly would suit us better than annual.",
			"I have shared the quote with our CFO. He asked whether the price is locked for the second year as well.",
		},
		files: []string{"Proposal_{companyfile}_2026.pdf", "Quote_Q{ticket}.pdf", "Pricing_Sheet.xlsx"},
	},
	{
		subjects: []string{"Contract renewal 2026", "Renewal terms for {company}", "Your subscription renews on {day}"},
		ourOpen: []string{
			"Your current agreement for {product} ends next month. I have prepared the renewal paperwork with the same terms and a small uplift of 3%.",
			"Ahead of the renewal I wanted to check whether the number of seats ({qty}) is still right for your team.",
		},
		custOpen: []string{
			"Our contract for {product} is up for renewal soon. Before we sign, we would like to review the seat count and the terms.",
		},
		ourReply: []string{
			"Of course – I have reduced the seat count in the attached contract. The price per seat stays the same.",
			"Thanks for the signed copy; the countersigned version will follow today.",
			"No problem, please send over legal's comments and I will get them reviewed on our side.",
		},
		custReply: []string{
			"We would like to renew, but we need to reduce the seat count slightly. Can you send an updated contract?",
			"Legal has a few comments on the liability clause; I will forward their mark-up by {day}.",
			"Signed copy attached. Please confirm once it is countersigned.",
		},
		files: []string{"Contract_draft_v3.docx", "Renewal_{companyfile}.pdf", "Signed_Agreement.pdf"},
	},
	{
		subjects: []string{"Meeting next {day}?", "Follow-up from our call", "Agenda for the kickoff", "Quick sync about {product}"},
		ourOpen: []string{
			"Would you have 30 minutes next {day} to go through the rollout plan? I can do 10:00 or 15:30 your time.",
			"Thanks again for your time today. As discussed, here is a short summary of the next steps and owners.",
			"I would like to introduce my colleague who will be your main contact during onboarding.",
		},
		custOpen: []string{
			"Could we set up a call next {day} to discuss the rollout? Our IT lead would like to join.",
			"Following up on our last meeting – are you available for a short sync this week?",
		},
		ourReply: []string{
			"{day} at 15:30 works for me. I will send an invite with a video link.",
			"Great, I have added our solutions engineer so we can answer the technical questions right away.",
			"Sounds good – talk then.",
		},
		custReply: []string{
			"{day} at 15:30 works for me.",
			"Sorry, I am travelling that week. Could we move it to the week after?",
			"Thanks for the summary, that matches my notes. I have added our IT lead to the thread.",
			"Sounds good – talk then.",
		},
		files: []string{"Meeting_notes.pdf", "Rollout_plan.xlsx", "Agenda.pdf"},
	},
	{
		subjects: []string{"Invoice {invoice}", "Payment reminder: invoice {invoice}", "Question about invoice {invoice}"},
		ourOpen: []string{
			"Please find attached invoice {invoice} for {amount}, due within 30 days.",
			"Our records show that invoice {invoice} ({amount}) is now 14 days overdue. Could you check its status?",
		},
		custOpen: []string{
			"We received invoice {invoice} but it is missing our PO number, so our system rejects it. Could you re-issue it?",
		},
		ourReply: []string{
			"Apologies for that – the corrected invoice with your PO number is attached.",
			"Thank you, we have received the payment.",
		},
		custReply: []string{
			"The invoice has been approved and payment is scheduled for {day}.",
			"Could you re-issue the invoice with our PO number on it? Our system rejects it otherwise.",
			"Payment was sent yesterday; remittance advice attached.",
		},
		files: []string{"Invoice_{invoice}.pdf", "Remittance_advice.pdf"},
	},
	{
		subjects: []string{"Ticket #{ticket}: {issue}", "Urgent: {issue}", "Re-opened: ticket #{ticket}"},
		ourOpen: []string{
			"We are following up on ticket #{ticket} ({issue}). Is the problem still occurring on your side?",
		},
		custOpen: []string{
			"Since this morning we see the following problem: {issue}. It affects about {qty} users. Screenshot attached.",
			"We are still seeing {issue} after applying the workaround you suggested. Can you escalate this?",
		},
		ourReply: []string{
			"Thanks for the report. I was able to reproduce it and have passed it to our engineering team.",
			"Could you send us the export log from the admin console? That will help us narrow it down.",
			"A fix has been deployed. Please clear your browser cache and let us know if the issue persists.",
		},
		custReply: []string{
			"Export log attached. The problem started right after the update on {day}.",
			"It works again on our side – thanks for the quick help!",
			"Still broken for some users, unfortunately. Anything else we can try?",
		},
		files:   []string{"screenshot.png", "export_log.zip", "error_{ticket}.png"},
		support: true,
	},
	{
		subjects: []string{"Question about {product}", "Feature request: bulk export", "How do I configure SSO?"},
		ourOpen: []string{
			"You asked about single sign-on during the demo: it is included in the premium plan, setup guide attached.",
		},
		custOpen: []string{
			"We are evaluating {product} and have a question: does it support single sign-on with our identity provider?",
			"Is there a way to export all records in bulk? The current export stops at 10,000 rows.",
		},
		ourReply: []string{
			"Yes, SSO via SAML and OIDC is included in the premium plan. I have attached the setup guide.",
			"Bulk export is on our roadmap for the next quarter. In the meantime the API supports paging.",
		},
		custReply: []string{
			"Thanks, that answers my question.",
			"Paging works for now, but please let us know when bulk export is available.",
		},
		files:   []string{"SSO_setup_guide.pdf", "API_examples.zip"},
		support: true,
	},
}

var issues = []string{
	"login fails after the update", "CSV export times out", "the API returns 502 errors",
	"SSO redirects loop", "data import is stuck at 80%", "dashboards show no data since Monday",
	"notification emails are delayed",
}

var products = []string{
	"Acme Cloud Suite", "Acme Analytics", "the Acme Connect API", "the Premium Support plan", "Acme Field Service",
}

var days = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}

var fillers = []string{
	"Let me know if you have any questions.",
	"Happy to jump on a call if that is easier.",
	"I have copied my colleague, who handles the technical side.",
	"Our team is fully booked until the end of the month, so an early decision would help with planning.",
	"We also have a customer reference in your industry if you would like to speak to them.",
	"Please keep in mind that the pricing is valid until the end of the quarter.",
	"For context: the previous vendor could not meet our uptime requirements, which is why we are looking at alternatives.",
	"I attached the relevant documents for your review; the main changes are highlighted in yellow.",
	"Once we have your go-ahead, onboarding typically takes two to three weeks.",
	"The data migration itself can run over a weekend, so there is no downtime for your users.",
	"Our security questionnaire answers and the latest SOC 2 report are available on request.",
	"Thanks again for the detailed feedback, it really helps us prioritise.",
}

var greetings = map[string][]string{
	"en": {"Hi {first},", "Hello {first},", "Dear {first},", "Good morning {first},"},
	"de": {"Hallo {first},", "Sehr geehrte Damen und Herren,", "Guten Tag {first},"},
	"fr": {"Bonjour {first},", "Madame, Monsieur,", "Cher {first},"},
	"ja": {"{first}様", "Dear {first},"},
}

var closings = map[string][]string{
	"en": {"Best regards,", "Kind regards,", "Thanks,", "Cheers,", "Best,"},
	"de": {"Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße"},
	"fr": {"Cordialement,", "Bien à vous,", "Merci d'avance,"},
	"ja": {"よろしくお願いいたします。", "Best regards,"},
}

// localized holds a few non-English lines so bodies carry real non-ASCII
// text (quoted-printable, ISO-8859-1 and UTF-8).
var localized = map[string][]string{
	"de": {
		"vielen Dank für Ihr Angebot. Wir prüfen es gerade intern und melden uns bis Ende der Woche.",
		"anbei die überarbeitete Bestellung. Bitte beachten Sie die geänderte Lieferadresse in München.",
		"könnten Sie uns die Preise für weitere {qty} Lizenzen schicken? Die Geschäftsführung möchte das Budget für 2026 festlegen.",
	},
	"fr": {
		"merci pour votre proposition. Nous l'étudions en interne et revenons vers vous très rapidement.",
		"pourriez-vous nous envoyer la facture corrigée ? Le numéro de commande était erroné.",
		"la réunion de lancement est confirmée pour mercredi à 14 h, dans nos locaux à Lyon.",
	},
	"ja": {
		"お世話になっております。先日はお打ち合わせの機会をいただき、ありがとうございました。",
		"お見積もりの件、社内で確認いたします。来週中にご連絡いたします。",
	},
}

var localSubjects = map[string][]string{
	"de": {"Angebot für {company}", "Rückfrage zur Rechnung {invoice}", "Termin nächste Woche – Einführung"},
	"fr": {"Proposition commerciale – {company}", "Réunion de suivi", "Question sur la facture {invoice}"},
	"ja": {"お見積もりの件", "打ち合わせ日程のご相談"},
}

var internalSubjects = []string{
	"Pipeline review this week", "FW: {company} pricing question", "Can you cover the {company} call on {day}?",
	"Team lunch on {day}", "Quarterly targets", "Handover: {company} account", "Escalation from {company}",
}

var internalLines = []string{
	"Quick heads-up: {company} asked about the renewal again, can you take a look before {day}?",
	"I will be out on {day}, so could you join the call instead of me?",
	"Numbers for the quarter are in the shared sheet. We are at 82% of target with three weeks to go.",
	"Please update the CRM notes after the meeting so finance sees the new payment terms.",
	"Lunch is booked for 12:30, the usual place.",
}

var autoReplies = []string{
	"Thank you for your message. I am out of the office until {day} with limited access to email. For urgent matters please contact our office.",
	"I am currently on annual leave and will respond to your email when I return. Your message has not been forwarded.",
	"Danke für Ihre Nachricht. Ich bin bis {day} nicht im Büro und habe keinen Zugriff auf meine E-Mails.",
}

var disclaimers = []string{
	"CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be legally privileged. If you are not the intended recipient, please notify the sender immediately and delete this e-mail. Any unauthorised copying, disclosure or distribution of the material in this e-mail is strictly forbidden.",
	"Please consider the environment before printing this email.",
	"This message has been scanned for viruses and dangerous content and is believed to be clean.",
}

var newsHeadlines = []string{
	"Five ways to shorten your sales cycle", "What the new data rules mean for CRM teams",
	"Customer story: scaling support without hiring", "Webinar: forecasting that finance trusts",
	"Release notes: faster dashboards and bulk actions", "Scheduled maintenance this weekend",
	"Why inbox zero is the wrong goal", "The state of B2B buying in 2026", "Ask the expert: pricing renewals",
	"Incident report: elevated API latency", "Community picks of the month", "Product tour: the new timeline view",
}

var newsLines = []string{
	"Teams that log every customer conversation close deals 18% faster, according to our latest survey of 1,200 sales leaders.",
	"The update rolls out gradually over the next two weeks; no action is needed on your side.",
	"Join us live on Thursday for a 45-minute session with practical examples and a Q&A at the end.",
	"We analysed thousands of anonymised pipelines to see which habits actually move the needle.",
	"Maintenance will start at 02:00 UTC and is expected to last less than 30 minutes.",
	"Read how one mid-sized retailer cut response times in half while handling twice the ticket volume.",
}
