package runtime

import (
	"errors"
	"testing"
)

func TestCheckChangelogConfig(t *testing.T) {
	for _, tc := range []struct {
		found, want string
		ok          bool
	}{
		{"compact", "compact", true},
		{"compact,delete", "delete,compact", true},
		{" delete , compact", "compact,delete", true},
		{"delete", "compact", false},
		{"compact", "compact,delete", false},
		{"", "compact", false},
		{"delete", "", true}, // the store states no policy
	} {
		err := checkChangelogConfig("t", map[string]string{"cleanup.policy": tc.found}, map[string]string{"cleanup.policy": tc.want})
		if got := err == nil; got != tc.ok {
			t.Errorf("found %q, want %q: err = %v, want ok %v", tc.found, tc.want, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrChangelogConfig) {
			t.Errorf("found %q, want %q: %v is not ErrChangelogConfig", tc.found, tc.want, err)
		}
	}
}

func TestShortRetention(t *testing.T) {
	for _, tc := range []struct {
		found, want string
		short       bool
	}{
		{"100", "200", true},
		{"200", "200", false},
		{"-1", "200", false}, // kept forever
		{"100", "", false},   // no retention wanted
		{"", "200", false},   // unknown
	} {
		_, _, short := shortRetention(map[string]string{"retention.ms": tc.found}, map[string]string{"retention.ms": tc.want})
		if short != tc.short {
			t.Errorf("found %q, want %q: short = %v, want %v", tc.found, tc.want, short, tc.short)
		}
	}
}
