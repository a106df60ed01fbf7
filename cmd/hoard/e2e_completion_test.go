package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ECompletionAndMan: hoard completion bash|zsh|fish and hoard man
// are made from the command definitions; the bash script, loaded into a
// real bash, completes commands and flags by asking hoard.
func TestE2ECompletionAndMan(t *testing.T) {
	t.Parallel()
	e := newEnvNoInit(t)
	bash := e.mustRun("completion", "bash")
	if _, err := exec.LookPath("bash"); err == nil {
		script := filepath.Join(t.TempDir(), "hoard.bash")
		if err := os.WriteFile(script, []byte(bash), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-c", `source "$1"
COMP_WORDS=(hoard ba); COMP_CWORD=1; _hoard; echo "cmd: ${COMPREPLY[*]}"
COMP_WORDS=(hoard backup --exclude-c); COMP_CWORD=2; _hoard; echo "flag: ${COMPREPLY[*]}"
COMP_WORDS=(hoard key re); COMP_CWORD=2; _hoard; echo "sub: ${COMPREPLY[*]}"`, "bash", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(hoardBinary(t))+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !containsAll(string(out), "cmd: backup\n", "flag: --exclude-caches\n", "sub: remove\n") {
			t.Errorf("bash completion: %v\n%s", err, out)
		}
	}
	if zsh := e.mustRun("completion", "zsh"); !containsAll(zsh, "#compdef hoard", "--generate-bash-completion") {
		t.Errorf("zsh completion:\n%s", zsh)
	}
	if fish := e.mustRun("completion", "fish"); !containsAll(fish, "complete -c hoard", "exclude-caches", "gpg-agent") {
		t.Errorf("fish completion:\n%s", fish)
	}
	e.mustFail(exitUsage, "completion", "tcsh")
	man := e.mustRun("man")
	if !containsAll(man, ".TH hoard 1", ".SH NAME", "backup", "--exclude-if-present", "forget") {
		t.Errorf("man page:\n%.2000s", man)
	}
	if strings.Contains(man, "`") {
		t.Error("man page has unrendered backquotes")
	}
}
