package sink_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
)

type fakeSink struct{ deps sink.Deps }

func (fakeSink) Deliver(_ context.Context, ms []*sink.Message) []sink.Result {
	return make([]sink.Result, len(ms))
}
func (fakeSink) Close() error { return nil }

func init() {
	sink.Register("registry-test", sink.Adapter{
		Parse: func(section map[string]any) (any, error) {
			if section["url"] == nil {
				return nil, errors.New("sink.registry-test.url: is required")
			}
			return section["url"], nil
		},
		Open: func(_ context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return fakeSink{deps: deps}, nil
		},
		Shared: true,
	})
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	if _, err := sink.Parse("nosuch", nil); err == nil || !strings.Contains(err.Error(), `sink.type: unknown sink type "nosuch"`) {
		t.Errorf("Parse(unknown) = %v", err)
	}
	if _, err := sink.Open(ctx, "registry-test", map[string]any{}, sink.Deps{}); err == nil || !strings.Contains(err.Error(), "sink.registry-test.url: is required") {
		t.Errorf("Open(bad section) = %v, want the Parse error", err)
	}
	s, err := sink.Open(ctx, "registry-test", map[string]any{"url": "x"}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d := s.(fakeSink).deps
	if d.Logger == nil || d.HTTP == nil || d.HTTP.Timeout == 0 || d.KV == nil || d.Metrics == nil {
		t.Errorf("Open filled no defaults: %+v", d)
	}
	if !sink.Shared("registry-test") || sink.Shared("nosuch") {
		t.Error("Shared() is wrong")
	}
}
