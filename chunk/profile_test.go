package chunk

import "testing"

func TestProfile(t *testing.T) {
	for name, want := range map[string]Params{"": DefaultParams(), "default": DefaultParams(), "dump": DumpParams()} {
		got, err := Profile(name)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v", name, got, err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if _, err := Profile("tiny"); err == nil {
		t.Error("unknown profile: no error")
	}
}
