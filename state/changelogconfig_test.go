package state_test

import (
	"maps"
	"testing"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

type ownConfig struct {
	*state.KeyValueBuilder[string, string]
	cfg map[string]string
}

func (b ownConfig) ChangelogConfig() map[string]string { return b.cfg }

type plainBuilder struct{ state.Builder }

func TestChangelogConfig(t *testing.T) {
	kv := state.KeyValue("s", serde.String(), serde.String())
	windowed := map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "86460000"}
	compact := map[string]string{"cleanup.policy": "compact"}
	for _, tc := range []struct {
		name string
		b    state.Builder
		want map[string]string
	}{
		{"key-value", kv, compact},
		{"timestamped", state.TimestampedKeyValue("s", serde.String(), serde.String()), compact},
		{"own", ownConfig{kv, windowed}, windowed},
		{"own nil", ownConfig{kv, nil}, compact},
		{"no method", plainBuilder{kv}, compact},
	} {
		got := state.ChangelogConfig(tc.b)
		if !maps.Equal(got, tc.want) {
			t.Errorf("%s: ChangelogConfig = %v, want %v", tc.name, got, tc.want)
		}
		got["cleanup.policy"] = "changed" // a copy: the builder's stays
		if again := state.ChangelogConfig(tc.b); !maps.Equal(again, tc.want) {
			t.Errorf("%s: ChangelogConfig after changing the result = %v, want %v", tc.name, again, tc.want)
		}
	}
}
