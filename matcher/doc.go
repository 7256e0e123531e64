// Package matcher decides, per message, which CRM records it belongs to, or
// that it must not be logged. It is pure: its inputs are a parsed header
// (ParseHeader), the account's policy, and a Directory of CRM records
// (usually a Cache in front of the CRM or of a filedir.Dir).
//
// A message goes through these steps, in order:
//
//  1. Participants and direction. Addresses are normalised (lower-case,
//     IDN domains in Unicode form, plus-addresses optionally folded). Own
//     domains and the account's aliases decide the direction: inbound from
//     outside, outbound from an own address, internal when every
//     participant is own.
//  2. Exclusions, before any rule, each with a reason code: the private
//     keyword, private folders, excluded folders and folder roles, the
//     blocklist, internal mail, bounces, automatic mail (Auto-Submitted,
//     vendor auto-reply headers, reports) and bulk mail (Precedence,
//     List-Id, List-Unsubscribe). The first that fires excludes the message
//     (Action exclude); the classes under Config.Keep can be turned off.
//  3. Capture pre-check: in selective mode a message the user did not mark
//     (log keyword or log folder) is skipped without any look-up.
//  4. Rules, in the configured order, first match wins: thread (a reply to
//     a logged message gets its records), tag (a pattern in the subject or
//     body names a record), address (participants that are contacts or
//     leads, their companies and open deals by the deal policy), domain
//     (the company of a participant's domain, freemail domains excepted).
//  5. Auto-create intents, when the account enables them: a lead for an
//     unknown inbound sender, a contact for an unknown outbound recipient,
//     a deal for a known contact without an open deal. The matcher only
//     asks; the caller creates.
//  6. Capture mode: all delivers every message left; matched delivers those
//     with a record or an intent and skips the rest; selective delivers the
//     marked ones. A marked message is delivered in every mode.
//
// The Decision records every step (participants and what the directory
// said, each exclusion, each rule, the outcome, the privacy level and what
// it lets the caller send), so it can be explained (WriteText, JSON).
package matcher
