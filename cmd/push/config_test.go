package main

import (
	"slices"
	"testing"
)

func TestConfigNamesVariables(t *testing.T) {
	env := map[string]string{
		"PUSH_MAX_WATCHES": "5", "PUSH_ORIGINS": "app.example.com", "PROJECTOR_GROUP": "g",
	}
	cfg, unknown, err := LoadConfig(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PUSH_ORIGINS"}; cfg.MaxWatches != 5 || !slices.Equal(unknown, want) {
		t.Fatalf("max watches %d and unknown %q, want 5 and %q", cfg.MaxWatches, unknown, want)
	}

	for _, tt := range []struct{ variable, value, want string }{
		{"PUSH_SHUTDOWN_TIMEOUT", "later",
			`PUSH_SHUTDOWN_TIMEOUT: must be a duration such as 10s, 500ms or 1m30s, got "later"`},
		{"PUSH_SUBMIT_URL", "http://%zz",
			`PUSH_SUBMIT_URL: must be a URL, got "http://%zz": parse "http://%zz": invalid URL escape "%zz"`},
	} {
		_, _, err := LoadConfig(t.Context(), map[string]string{tt.variable: tt.value})
		if err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %s", err, tt.want)
		}
	}
}
