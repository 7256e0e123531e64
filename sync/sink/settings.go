package sink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// SettingError words a failed decode of an adapter's config section for an
// admin: the key path, what the key wants and the value the file holds,
// without the decoder's or the standard library's internals
// ("sink.webhook.timeout: want a duration such as 10s ..., not \"5x\"").
func SettingError(section string, settings map[string]any, err error) error {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) || de.Name() == "" {
		return fmt.Errorf("%s: %w", section, err)
	}
	key := de.Name()
	v := fmt.Sprint(settings[key])
	reason := de.Unwrap().Error()
	switch {
	case strings.Contains(reason, "time: "):
		reason = fmt.Sprintf("want a duration such as 10s, 5m or 1h30m (units ms, s, m, h), not %q", v)
	case strings.Contains(reason, "expected type 'int"), strings.Contains(reason, "expected type 'uint"):
		reason = fmt.Sprintf("want a whole number, not %q", v)
	case strings.Contains(reason, "expected type 'bool'"):
		reason = fmt.Sprintf("want true or false, not %q", v)
	case strings.Contains(reason, "expected type 'string'"):
		reason = fmt.Sprintf("want a string, not %q", v)
	case strings.Contains(reason, "expected type 'map"):
		reason = fmt.Sprintf("want a map of names to values, not %q", v)
	}
	return fmt.Errorf("%s.%s: %s", section, key, reason)
}
