package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EGPGAgentReason: --gpg-agent with a secret key that gpg holds but
// cannot use (its passphrase is not in the agent and there is no pinentry:
// /bin/false, or a pinentry program that does not exist) says gpg's own
// reason and exits 12, instead of "no key file is encrypted to gpg-agent".
// A keyring without the secret key still says that no key file is for it.
func TestE2EGPGAgentReason(t *testing.T) {
	t.Parallel()
	h := gpgNewHome(t)
	const pass = "agent passphrase"
	fpr := h.genKey(t, "Agent <agent@example.com>", "future-default", "never", pass)
	e := newEnvNoInit(t)
	e.extraEnv = []string{"GNUPGHOME=" + h.dir}
	e.mustRun("init", "--gpg-recipient", h.exportPublic(t, fpr))
	agent := gpgWith(t, e, "HOARD_GPG_AGENT=1")

	restart := func(conf string) {
		gpgWriteFile(t, filepath.Join(h.dir, "gpg-agent.conf"), []byte(conf))
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = h.env()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpgconf --kill gpg-agent: %v %s", err, out)
		}
	}
	for _, conf := range []string{
		"allow-preset-passphrase\npinentry-program /bin/false\n",
		"pinentry-program /nonexistent/pinentry\n",
	} {
		restart(conf)
		_, stderr := gpgExpectFail(t, agent, exitWrongKey, []string{"could not use it", "No pinentry"}, "snapshots")
		if strings.Contains(stderr, "no key file is encrypted") {
			t.Errorf("with %q: %s", conf, stderr)
		}
	}
	// A wrong passphrase in the agent: gpg tries it, then asks pinentry.
	restart("allow-preset-passphrase\npinentry-program /bin/false\n")
	h.preset(t, fpr, "not the passphrase")
	gpgExpectFail(t, agent, exitWrongKey, []string{"could not use it", "gpg says"}, "snapshots")
	// The right one opens the repository.
	h.preset(t, fpr, pass)
	agent.mustRun("snapshots")

	// Another keyring, without this secret key: not a key for it.
	other := gpgNewHome(t)
	other.genKey(t, "Other <other@example.com>", "future-default", "never", "x")
	stranger := gpgWith(t, e, "HOARD_GPG_AGENT=1", "GNUPGHOME="+other.dir)
	gpgExpectFail(t, stranger, exitWrongKey, []string{"no key file is encrypted to gpg-agent"}, "snapshots")
}
