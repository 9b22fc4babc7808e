package main

import (
	"slices"
	"testing"
)

func TestConfigNamesVariables(t *testing.T) {
	env := map[string]string{
		"PROJECTOR_GROUP": "read-model-2", "PROJECTOR_BATCH": "64", "SIDECAR_GRPC_ADDR": "x",
	}
	cfg, unknown, err := LoadConfig(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PROJECTOR_BATCH"}
	if cfg.Group != "read-model-2" || !slices.Equal(unknown, want) {
		t.Fatalf("group %q and unknown %q, want read-model-2 and %q",
			cfg.Group, unknown, want)
	}

	_, _, err = LoadConfig(t.Context(), map[string]string{"PROJECTOR_MAX_IN_FLIGHT": "lots"})
	const bad = `PROJECTOR_MAX_IN_FLIGHT: must be an integer from -2147483648 to 2147483647, got "lots"`
	if err == nil || err.Error() != bad {
		t.Fatalf("error %v, want %s", err, bad)
	}
}
