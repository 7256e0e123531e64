package matcher_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// genHeaders makes n realistic header blocks over a fixed population:
// known contacts, unknown people at known companies, freemail senders,
// lists and replies, in proportions a sales mailbox sees.
func genHeaders(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var from, extra string
		switch i % 10 {
		case 0, 1, 2, 3:
			from = fmt.Sprintf("\"Contact %d\" <contact%d@company%d.example>", i%40, i%40, i%8)
		case 4, 5:
			from = fmt.Sprintf("Person %d <person%d@company%d.example>", i%60, i%60, i%8)
		case 6:
			from = fmt.Sprintf("=?utf-8?q?J=C3=BCrgen_%d?= <user%d@gmail.com>", i%30, i%30)
		case 7:
			from = "Newsletter <news@company3.example>"
			extra = "List-Id: <news.company3.example>\r\nList-Unsubscribe: <mailto:u@company3.example>\r\nPrecedence: bulk\r\n"
		case 8:
			from = fmt.Sprintf("contact%d@company%d.example", i%40, i%8)
			extra = fmt.Sprintf("In-Reply-To: <thread-%d@ourco.com>\r\nReferences: <root-%d@ourco.com> <thread-%d@ourco.com>\r\n", i%50, i%50, i%50)
		case 9:
			from = fmt.Sprintf("Colleague <colleague%d@ourco.com>", i%5)
			extra = fmt.Sprintf("Cc: contact%d@company%d.example\r\n", (i+3)%40, (i+3)%8)
		}
		out[i] = []byte(fmt.Sprintf("Return-Path: <bounce-%d@mail.example>\r\n"+
			"Delivered-To: tom@ourco.com\r\n"+
			"Received: from mail-out.example (mail-out.example [198.51.100.%d])\r\n\tby mx1.ourco.com (Postfix) with ESMTPS id 4T%06dZ\r\n\tfor <tom@ourco.com>; Tue, 12 Mar 2024 09:14:03 +0100 (CET)\r\n"+
			"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example; s=s1;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=Q2xhc3NpYyBESUtJTSBzaWduYXR1cmUgZm9yIHRlc3RzIG9ubHk=\r\n"+
			"Message-ID: <gen-%d@mail.example>\r\n"+
			"Date: Tue, 12 Mar 2024 09:14:%02d +0100\r\n"+
			"From: %s\r\n"+
			"To: Tom Keller <tom@ourco.com>\r\n"+
			"Subject: =?utf-8?q?Angebot_Nr=2E_%d_f=C3=BCr_Q2?=\r\n"+
			"%s"+
			"MIME-Version: 1.0\r\n"+
			"Content-Type: multipart/alternative; boundary=\"b%d\"\r\n\r\n", i, i%250, i, i, i%60, from, i, extra, i))
	}
	return out
}

// genDirectory knows the generated population's contacts and companies.
func genDirectory() *fakeDir {
	d := &fakeDir{emails: map[string][]sink.Record{}, domains: map[string][]sink.Record{}}
	for i := 0; i < 40; i++ {
		a := fmt.Sprintf("contact%d@company%d.example", i, i%8)
		d.emails[a] = []sink.Record{{Kind: sink.KindContact, ID: fmt.Sprintf("c-%d", i), Email: a, Company: fmt.Sprintf("co-%d", i%8),
			Deals: []sink.Deal{{ID: fmt.Sprintf("d-%d", i), Open: true}, {ID: fmt.Sprintf("d-%d-old", i), Open: true}}}}
	}
	for i := 0; i < 8; i++ {
		dom := fmt.Sprintf("company%d.example", i)
		d.domains[dom] = []sink.Record{{Kind: sink.KindCompany, ID: fmt.Sprintf("co-%d", i), Domain: dom}}
	}
	return d
}

type benchSet struct {
	name    string
	m       *matcher.Matcher
	headers [][]byte
	inputs  []matcher.Input
}

func benchSets(b *testing.B) []benchSet {
	b.Helper()
	env := loadCorpus(b)
	corpus := benchSet{name: "corpus", m: env.m}
	for _, c := range env.cases {
		in := env.input(b, c)
		raw, err := os.ReadFile(filepath.Join(env.dir, c.File))
		if err != nil {
			b.Fatal(err)
		}
		head, _ := splitMessage(raw)
		corpus.headers = append(corpus.headers, head)
		corpus.inputs = append(corpus.inputs, in)
	}
	cfg := baseConfig()
	gen := benchSet{name: "generated", m: newMatcher(b, cfg, matcher.NewCache(genDirectory(), matcher.CacheOptions{}), nil), headers: genHeaders(1000)}
	pol := &matcher.AccountPolicy{}
	for _, h := range gen.headers {
		msg, _ := matcher.ParseHeader(h)
		gen.inputs = append(gen.inputs, matcher.Input{Msg: msg, Policy: pol, Folder: "INBOX", FolderRole: "inbox"})
	}
	sets := []benchSet{corpus, gen}
	for _, s := range sets { // warm the caches
		for _, in := range s.inputs {
			if _, err := s.m.Match(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
	}
	return sets
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMatch measures Match alone on pre-parsed messages with a warm
// cache. Run on one core: go test -run '^$' -bench . -cpu 1 ./matcher/
func BenchmarkMatch(b *testing.B) {
	for _, s := range benchSets(b) {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.m.Match(ctx, s.inputs[i%len(s.inputs)]); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkParseHeader measures ParseHeader alone.
func BenchmarkParseHeader(b *testing.B) {
	for _, s := range benchSets(b) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				matcher.ParseHeader(s.headers[i%len(s.headers)])
			}
			reportRate(b)
		})
	}
}

// BenchmarkParseAndMatch measures what the daemon does per message.
func BenchmarkParseAndMatch(b *testing.B) {
	for _, s := range benchSets(b) {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				n := i % len(s.inputs)
				msg, _ := matcher.ParseHeader(s.headers[n])
				in := s.inputs[n]
				in.Msg = msg
				if _, err := s.m.Match(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkMatchBatch measures MatchBatch on batches of 100.
func BenchmarkMatchBatch(b *testing.B) {
	s := benchSets(b)[1]
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := (i * 100) % len(s.inputs)
		if _, err := s.m.MatchBatch(ctx, s.inputs[start:start+100]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msgs/s")
}
