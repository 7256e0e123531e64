package matcher_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/matcher/filedir"
	"github.com/mailsync/mailsync/sync/sink"
)

// manifest is testdata/corpus/expected.yaml.
type manifest struct {
	Config   map[string]any            `yaml:"config"`
	Accounts map[string]map[string]any `yaml:"accounts"`
	Threads  map[string][]string       `yaml:"threads"`
	Messages []corpusCase              `yaml:"messages"`
}

type corpusCase struct {
	File        string   `yaml:"file"`
	Account     string   `yaml:"account"`
	Folder      string   `yaml:"folder"`
	Role        string   `yaml:"role"`
	Keywords    []string `yaml:"keywords"`
	Body        bool     `yaml:"body"`
	Action      string   `yaml:"action"`
	Reason      string   `yaml:"reason"`
	Rule        string   `yaml:"rule"`
	Direction   string   `yaml:"direction"`
	Records     []string `yaml:"records"`
	Intents     []string `yaml:"intents"`
	ParseErrors bool     `yaml:"parse_errors"`
}

// mapThreads is a ThreadIndex over a fixed map.
type mapThreads map[string][]sink.Record

func (t mapThreads) ThreadRecords(_ context.Context, ids []string) ([]sink.Record, error) {
	for _, id := range ids {
		if r, ok := t[id]; ok {
			return r, nil
		}
	}
	return nil, nil
}

func parseRef(t testing.TB, s string) sink.Record {
	k, id, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("bad record ref %q", s)
	}
	return sink.Record{Kind: sink.Kind(k), ID: id}
}

// decodeConfig decodes through mapstructure, as viper does, so the tags are
// checked too.
func decodeConfig(t testing.TB, in any, out any) {
	t.Helper()
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: out, ErrorUnused: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(in); err != nil {
		t.Fatalf("decode config: %v", err)
	}
}

type corpusEnv struct {
	m        *matcher.Matcher
	policies map[string]*matcher.AccountPolicy
	cases    []corpusCase
	dir      string
}

func loadCorpus(t testing.TB) *corpusEnv {
	t.Helper()
	dir := filepath.Join("testdata", "corpus")
	b, err := os.ReadFile(filepath.Join(dir, "expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := yaml.Unmarshal(b, &man); err != nil {
		t.Fatalf("expected.yaml: %v", err)
	}
	var cfg matcher.Config
	decodeConfig(t, man.Config, &cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	policies := map[string]*matcher.AccountPolicy{}
	for name, raw := range man.Accounts {
		p := &matcher.AccountPolicy{}
		decodeConfig(t, raw, p)
		if err := p.Validate("accounts[" + name + "].matcher"); err != nil {
			t.Fatal(err)
		}
		policies[name] = p
	}
	threads := mapThreads{}
	for id, refs := range man.Threads {
		for _, r := range refs {
			threads[id] = append(threads[id], parseRef(t, r))
		}
	}
	fd, err := filedir.Open(filepath.Join("testdata", "directory.csv"), filedir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := matcher.New(cfg, matcher.NewCache(fd, matcher.CacheOptions{}), threads)
	if err != nil {
		t.Fatal(err)
	}
	return &corpusEnv{m: m, policies: policies, cases: man.Messages, dir: dir}
}

// input reads a case's file and builds its Input.
func (env *corpusEnv) input(t testing.TB, c corpusCase) matcher.Input {
	raw, err := os.ReadFile(filepath.Join(env.dir, c.File))
	if err != nil {
		t.Fatal(err)
	}
	head, body := splitMessage(raw)
	msg, err := matcher.ParseHeader(head)
	if err != nil {
		t.Fatalf("%s: ParseHeader: %v", c.File, err)
	}
	pol, ok := env.policies[c.Account]
	if !ok {
		t.Fatalf("%s: unknown account %q", c.File, c.Account)
	}
	in := matcher.Input{Msg: msg, Account: c.Account, Policy: pol, Folder: c.Folder, FolderRole: c.Role, Keywords: c.Keywords}
	if c.Body {
		in.Body = body
	}
	return in
}

// splitMessage splits at the first empty line, CRLF or LF.
func splitMessage(raw []byte) (head, body []byte) {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 {
			return raw[:i+len(sep)], raw[i+len(sep):]
		}
	}
	return raw, nil
}

func refs(rs []sink.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key()
	}
	slices.Sort(out)
	return out
}

func sorted(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// TestCorpus runs every message of testdata/corpus through ParseHeader and
// Match and compares the decision with expected.yaml.
func TestCorpus(t *testing.T) {
	env := loadCorpus(t)
	if got := len(env.cases); got < 100 {
		t.Fatalf("corpus has %d messages, want at least 100", got)
	}
	files, _ := filepath.Glob(filepath.Join(env.dir, "*.eml"))
	if len(files) != len(env.cases) {
		t.Errorf("%d .eml files but %d manifest entries", len(files), len(env.cases))
	}
	var sum matcher.Summary
	for _, c := range env.cases {
		t.Run(strings.TrimSuffix(c.File, ".eml"), func(t *testing.T) {
			in := env.input(t, c)
			d, err := env.m.Match(context.Background(), in)
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			sum.Add(d)
			var explain strings.Builder
			d.WriteText(&explain)
			fail := func(what string, got, want any) {
				t.Errorf("%s = %v, want %v\n%s", what, got, want, explain.String())
			}
			if got, want := string(d.Action), c.Action; got != want {
				fail("action", got, want)
			}
			if got, want := d.Reason.Code, c.Reason; got != want {
				fail("reason", got, want)
			}
			if got, want := d.Rule, c.Rule; got != want {
				fail("rule", got, want)
			}
			if got, want := string(d.Direction), c.Direction; got != want {
				fail("direction", got, want)
			}
			if got, want := refs(d.Records), sorted(c.Records); !slices.Equal(got, want) {
				fail("records", got, want)
			}
			var intents []string
			for _, i := range d.Intents {
				intents = append(intents, string(i.Kind)+":"+i.Reason)
			}
			if got, want := sorted(intents), sorted(c.Intents); !slices.Equal(got, want) {
				fail("intents", got, want)
			}
			if got, want := len(d.ParseErrors) > 0, c.ParseErrors; got != want {
				fail("has parse errors", d.ParseErrors, want)
			}
		})
	}
	if t.Failed() {
		var b strings.Builder
		sum.WriteText(&b)
		t.Logf("summary:\n%s", b.String())
	}
}
