package chunk

import "testing"

func TestProfile(t *testing.T) {
	for name, want := range map[string]Params{"large": DefaultParams(), "dump": DumpParams()} {
		got, err := Profile(name)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v", name, got, err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"tiny", "", "default"} {
		if _, err := Profile(name); err == nil {
			t.Errorf("profile %q: no error", name)
		}
	}
}
