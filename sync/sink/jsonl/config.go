package jsonl

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strconv"

	"github.com/go-viper/mapstructure/v2"

	"github.com/mailsync/mailsync/sync/sink"
)

// configPath prefixes errors about the config section.
const configPath = "sink.jsonl"

func init() {
	sink.Register("jsonl", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(_ context.Context, cfg any, _ sink.Deps) (sink.Sink, error) {
			return Open(cfg.(Config))
		},
	})
}

// ParseSettings decodes the sink.jsonl config section. Keys: path
// (required), file_mode (octal string such as "0640", or a number). Errors
// name the key: "sink.jsonl.foo: unknown key".
func ParseSettings(settings map[string]any) (Config, error) {
	var cfg Config
	for k := range settings {
		if k != "path" && k != "file_mode" {
			return cfg, fmt.Errorf("%s.%s: unknown key", configPath, k)
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  fileModeHook,
		ErrorUnused: true,
		Result:      &cfg,
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(settings); err != nil {
		return cfg, sink.SettingError(configPath, settings, err)
	}
	if cfg.Path == "" {
		return cfg, fmt.Errorf("%s.path: is required", configPath)
	}
	if cfg.FileMode&^os.ModePerm != 0 {
		return cfg, fmt.Errorf("%s.file_mode: %#o has bits beyond 0777 (write it as an octal string, e.g. \"0600\")", configPath, uint32(cfg.FileMode))
	}
	return cfg, nil
}

// fileModeHook reads an octal string ("0640", "0o640") as a file mode.
func fileModeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[os.FileMode]() || from.Kind() != reflect.String {
		return data, nil
	}
	s := data.(string)
	if len(s) > 1 && (s[1] == 'o' || s[1] == 'O') && s[0] == '0' {
		s = s[2:]
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return nil, fmt.Errorf("%q is not an octal file mode", data)
	}
	return os.FileMode(v), nil
}
