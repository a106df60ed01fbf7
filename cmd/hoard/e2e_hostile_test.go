//go:build unix

package main

// End-to-end tests of hostile repositories and inputs (issue: hostile
// parameters, special files, signals, snapshot references, arguments).

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/repo/pack"
	"github.com/hoard-backup/hoard/snapshot"
)

// hostileSource writes a small source tree and returns its folder.
func hostileSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": strings.Repeat("bravo ", 1000)} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// replaceWithFIFO removes the file at p and makes a FIFO in its place.
func replaceWithFIFO(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runWithin runs hoard and fails the test if it takes longer than limit
// (killing it then).
func (e *env) runWithin(limit time.Duration, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	type res struct {
		out, errOut string
		code        int
	}
	ch := make(chan res, 1)
	cmd := e.command(args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		c := 0
		if ee, ok := err.(*exec.ExitError); ok {
			c = ee.ExitCode()
		}
		ch <- res{out.String(), errOut.String(), c}
	}()
	select {
	case r := <-ch:
		return r.out, r.errOut, r.code
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-ch
		e.t.Fatalf("hoard %s still runs after %v", shortArgs(args), limit)
	}
	return "", "", 0
}

// TestE2EFIFOInRepository plants FIFOs where the config and a pack belong:
// hoard must stop at once with an error naming the FIFO, not wait forever
// for a writer.
func TestE2EFIFOInRepository(t *testing.T) {
	t.Parallel()
	t.Run("pack", func(t *testing.T) {
		e := newEnv(t).on(t)
		src := hostileSource(t)
		e.mustBackup(nil, src)
		packs := e.packFiles()
		for _, p := range packs {
			replaceWithFIFO(t, p)
		}
		_, stderr, code := e.runWithin(20*time.Second, "restore", "latest", "--target", t.TempDir())
		if code == 0 || !strings.Contains(stderr, "named pipe") {
			t.Errorf("restore with FIFO packs: exit %d, stderr %q; want a failure naming the named pipe", code, stderr)
		}
		out, stderr, code := e.runWithin(20*time.Second, "check", "--read-data")
		if code != exitDamaged || !strings.Contains(out+stderr, "named pipe") {
			t.Errorf("check --read-data with FIFO packs: exit %d, want %d; output %q %q", code, exitDamaged, out, stderr)
		}
	})
	t.Run("key", func(t *testing.T) {
		e := newEnv(t).on(t)
		ks, _ := filepath.Glob(filepath.Join(e.repo, "keys", "*"))
		if len(ks) != 1 {
			t.Fatalf("key files: %v", ks)
		}
		replaceWithFIFO(t, ks[0])
		// A FIFO is no key file: it is not even listed.
		_, stderr, code := e.runWithin(20*time.Second, "snapshots")
		if code != exitDamaged || !strings.Contains(stderr, "no key files") {
			t.Errorf("snapshots with a FIFO as the key file: exit %d, stderr %q; want %d, no key files", code, stderr, exitDamaged)
		}
	})
	t.Run("config", func(t *testing.T) {
		e := newEnv(t).on(t)
		replaceWithFIFO(t, filepath.Join(e.repo, "config"))
		_, stderr, code := e.runWithin(20*time.Second, "snapshots")
		if code == 0 || !strings.Contains(stderr, "config") || !strings.Contains(stderr, "named pipe") {
			t.Errorf("snapshots with a FIFO config: exit %d, stderr %q; want a failure naming the config and the named pipe", code, stderr)
		}
	})
}

// packFiles returns the paths of the repository's pack files.
func (e *env) packFiles() []string {
	e.t.Helper()
	var out []string
	for _, rel := range e.repoFiles() {
		if strings.HasPrefix(rel, "data"+string(filepath.Separator)) {
			out = append(out, filepath.Join(e.repo, rel))
		}
	}
	if len(out) == 0 {
		e.t.Fatal("no packs in the repository")
	}
	return out
}

// TestE2ESignalDuringBlockingRead sends SIGINT and SIGTERM to hoard while it
// waits for a passphrase from a FIFO that nobody writes: it must exit 130
// promptly.
func TestE2ESignalDuringBlockingRead(t *testing.T) {
	e := newEnv(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := e.on(t)
			fifo := filepath.Join(t.TempDir(), "pw")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			e.pwFile = fifo
			cmd := e.command("snapshots")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(500 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("hoard ended before the signal: %v, %s", err, stderr.String())
			default:
			}
			start := time.Now()
			_ = cmd.Process.Signal(sig)
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != exitInterrupted {
					t.Errorf("after %v: %v, want exit %d; stderr %q", sig, err, exitInterrupted, stderr.String())
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("hoard took %v to stop after %v", d, sig)
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("hoard still runs 20 s after %v", sig)
			}
		})
	}
}

// TestE2ECommandSecretsRedacted backs up the output of commands whose
// arguments hold passwords: neither the snapshot (which write-only keys
// read) nor the error of a failing command may hold them.
func TestE2ECommandSecretsRedacted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const secret = "hunter2secret"
	e.mustBackup(nil, "--stdin-filename", "db.dump", "--stdin-from-command", "--",
		"sh", "-c", "echo dump of $0", "postgres://app:"+secret+"@db.example/app", "password="+secret)
	out := e.mustRun("--json", "snapshots")
	if strings.Contains(out, secret) {
		t.Errorf("the snapshot holds the password:\n%s", out)
	}
	if !strings.Contains(out, "postgres://app:***@db.example/app") || !strings.Contains(out, "password=***") {
		t.Errorf("the snapshot's command does not show the redacted arguments:\n%s", out)
	}
	if text := e.mustRun("snapshots"); strings.Contains(text, secret) {
		t.Errorf("snapshots prints the password:\n%s", text)
	}
	_, stderr, code := e.run("backup", "--stdin-from-command", "--", "false", "postgres://app:"+secret+"@db.example/app")
	if code != exitSource || strings.Contains(stderr, secret) || !strings.Contains(stderr, "postgres://app:***@") {
		t.Errorf("failing command: exit %d, stderr %q; want %d and the URL without its password", code, stderr, exitSource)
	}
}

// forgeExpandingSnapshot writes, with the repository's keys as any writer
// holds them, a snapshot whose tree names one subtree twice at each of
// depth levels: a few hundred bytes that expand to 2^(depth+1) entries.
func forgeExpandingSnapshot(t *testing.T, e *env, depth int) string {
	t.Helper()
	ctx := context.Background()
	r := dmgOpen(t, e.repo)
	defer r.Close()
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	leaf := &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o644, ModTime: mtime}}}
	tid, _, err := snapshot.SaveTree(ctx, r, leaf)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		sub := tid
		tr := &snapshot.Tree{Nodes: []snapshot.Node{
			{Name: "a", Type: snapshot.TypeDir, Mode: 0o755 | os.ModeDir, ModTime: mtime, Subtree: &sub},
			{Name: "b", Type: snapshot.TypeDir, Mode: 0o755 | os.ModeDir, ModTime: mtime, Subtree: &sub},
		}}
		if tid, _, err = snapshot.SaveTree(ctx, r, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: mtime, Host: "attacker", Paths: []string{"/x"}, Source: snapshot.Source{Kind: "files"}, Tree: tid}
	if err := snapshot.Save(ctx, r, sn); err != nil {
		t.Fatal(err)
	}
	return sn.ID.String()
}

// TestE2EExpandingTree: a snapshot whose tree repeats one subtree at every
// level (2^65 entries from 64 tiny trees) must not make ls, restore or diff
// run without end: they refuse it at once with exit 14, naming the bound.
// check, stats and prune walk each subtree once and finish.
func TestE2EExpandingTree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustBackup(nil, hostileSource(t))
	snap := forgeExpandingSnapshot(t, e, 64)
	limit := 60 * time.Second
	for _, args := range [][]string{
		{"ls", snap},
		{"--json", "ls", snap},
		{"restore", snap, "--target", t.TempDir()},
		{"diff", "latest", snap},
	} {
		_, stderr, code := e.runWithin(limit, args...)
		if code != exitDamaged || !strings.Contains(stderr, "expands to more than") {
			t.Errorf("hoard %s: exit %d, stderr %q; want %d and \"expands to more than\"", strings.Join(args, " "), code, stderr, exitDamaged)
		}
	}
	for _, args := range [][]string{{"check"}, {"stats"}} {
		if _, stderr, code := e.runWithin(limit, args...); code != 0 {
			t.Errorf("hoard %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
	// stats counts 2^64 files and more as the most it can, not as what
	// an overflow leaves.
	var st struct {
		Files uint64 `json:"files"`
	}
	e.mustRunJSON(&st, "stats", snap)
	if st.Files != 1<<64-1 {
		t.Errorf("stats of the 2^64-file snapshot: %d files", st.Files)
	}
	// A tree that expands a little (2^11-2 folders, 2^10 files) is listed as usual.
	small := forgeExpandingSnapshot(t, e, 10)
	out, _, code := e.runWithin(limit, "ls", small)
	if n := strings.Count(out, "\n"); code != 0 || n != 1<<11-2+1<<10 {
		t.Errorf("ls of a tree of 2^11 paths: exit %d, %d lines", code, n)
	}
}

// TestE2ECommandLineMistakes: extra arguments, bad, unknown and ambiguous
// snapshot references and excludes that would exclude everything are
// usage errors (exit 2), never ignored; "LATEST" is "latest".
func TestE2ECommandLineMistakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := hostileSource(t)
	first := e.mustBackup(nil, src).ID
	// Forge snapshots until two IDs share their first digit.
	r := dmgOpen(t, e.repo)
	seen := map[byte]string{first[0]: first}
	ambiguous := ""
	for i := 0; ambiguous == ""; i++ {
		sn, err := snapshot.Find(context.Background(), r, first, snapshot.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		sn.Time = sn.Time.Add(time.Duration(i+1) * time.Second)
		if err := snapshot.Save(context.Background(), r, sn); err != nil {
			t.Fatal(err)
		}
		id := sn.ID.String()
		if _, ok := seen[id[0]]; ok {
			ambiguous = id[:1]
		}
		seen[id[0]] = id
	}
	r.Close()
	for _, args := range [][]string{
		{"check", "extra"},
		{"snapshots", "extra"},
		{"prune", "extra"},
		{"unlock", "extra"},
		{"key", "list", "extra"},
		{"repair", "index", "extra"},
		{"repair", "nosuchcommand"},
		{"init", "extra"},
		{"ls", "not-an-id"},
		{"ls", "abcdef0123"},
		{"ls", ambiguous},
		{"restore", ambiguous, "--target", t.TempDir()},
		{"diff", first, "zz"},
		{"backup", "--exclude", "/", src},
		{"backup", "--exclude", "", src},
		{"backup", "--exclude", "//", src},
	} {
		if args[0] == "ls" && args[1] == "abcdef0123" && strings.HasPrefix(first, "abcdef0123") {
			continue
		}
		_, stderr, code := e.run(args...)
		if code != exitUsage {
			t.Errorf("hoard %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, exitUsage, stderr)
		}
	}
	if n := len(e.snapshotIDs()); n != len(seen)+1 {
		t.Errorf("%d snapshots after refused backups, want %d", n, len(seen)+1)
	}
	for _, ref := range []string{"LATEST", "Latest", strings.ToUpper(first[:8])} {
		if out := e.mustRun("ls", ref); !strings.Contains(out, "a.txt") {
			t.Errorf("ls %s:\n%s", ref, out)
		}
	}
}

// TestE2EHostileNames: names with escape sequences, line breaks and bytes
// that are not UTF-8 are listed quoted, one per line, never raw; an exact
// non-UTF-8 path given to --include or --exclude (either spelling) matches
// it, byte for byte.
func TestE2EHostileNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	names := map[string]string{ // name -> how ls shows it
		"a\x1b[31mred": `"/src/a\x1b[31mred"`,
		"line\nbreak":  `"/src/line\nbreak"`,
		"\xff\xfe":     `"/src/\xff\xfe"`,
		"caf\xe9":      `"/src/caf\xe9"`,
		"rlo\u202etxt": `"/src/rlo\u202etxt"`,
		"plain café":   `/src/plain café`,
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name := range names {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustBackup(nil, src)
	for _, long := range []bool{false, true} {
		args := []string{"ls", "latest"}
		if long {
			args = append(args, "-l")
		}
		out := e.mustRun(args...)
		if strings.ContainsAny(out, "\x1b\u202e") || strings.Contains(out, "\xff") || strings.Contains(out, "line\nbreak") {
			t.Errorf("hoard %s prints control characters or bytes that are not UTF-8 raw:\n%q", strings.Join(args, " "), out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(names)+1 {
			t.Errorf("hoard %s: %d lines for %d paths:\n%s", strings.Join(args, " "), len(lines), len(names)+1, out)
		}
		for _, shown := range names {
			if !strings.Contains(out, shown+"\n") {
				t.Errorf("hoard %s does not show %s:\n%s", strings.Join(args, " "), shown, out)
			}
		}
	}
	for _, flag := range []string{"--include", "-i"} {
		target := t.TempDir()
		e.mustRun("restore", "latest", "--target", target, flag, "/src/\xff\xfe")
		got, _ := os.ReadDir(filepath.Join(target, "src"))
		if len(got) != 1 || got[0].Name() != "\xff\xfe" {
			t.Errorf("restore %s /src/\\xff\\xfe restored %v", flag, got)
		}
	}
	for _, flag := range []string{"--exclude", "-e"} {
		res := e.mustBackup(nil, flag, filepath.Join(src, "\xff\xfe"), flag, filepath.Join(src, "caf\xe9"), src)
		out := e.mustRun("ls", res.ID)
		if strings.Contains(out, `\xff`) || strings.Contains(out, `caf\xe9`) || !strings.Contains(out, "plain") {
			t.Errorf("backup %s of two non-UTF-8 paths:\n%s", flag, out)
		}
	}
}

// TestE2ESpecialFilesNotRestoredSaySo: a socket in a backup is not
// recreated by restore (a FIFO is); that is said without --verbose, naming
// it, and counted in the summary.
func TestE2ESpecialFilesNotRestoredSaySo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := hostileSource(t)
	if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(src, "sock")}); err != nil {
		t.Skipf("bind a socket at %s: %v", src, err)
	}
	e.mustBackup(nil, src)
	out, stderr, code := e.run("restore", "latest", "--target", t.TempDir())
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	// The FIFO is made again; the socket, which belongs to a running
	// process, is not, and that is said and counted.
	if !strings.Contains(stderr, "/src/sock") {
		t.Errorf("restore does not name /src/sock as not restored:\n%s", stderr)
	}
	if strings.Contains(stderr, "/src/pipe") {
		t.Errorf("restore warns about the FIFO it recreated:\n%s", stderr)
	}
	if !strings.Contains(out, "1 special file not restored") {
		t.Errorf("restore summary does not count the socket:\n%s", out)
	}
	// Not when an include leaves them out.
	out, stderr, _ = e.run("restore", "latest", "--target", t.TempDir(), "--include", "/src/a.txt")
	if strings.Contains(stderr+out, "special") {
		t.Errorf("restore --include /src/a.txt mentions special files:\n%s%s", out, stderr)
	}
}

// TestE2EInvalidTreeExits14: a restore (and ls) of a snapshot whose tree
// breaks the format's rules (a name "..") exits 14, damaged data, as check
// says, not 1.
func TestE2EInvalidTreeExits14(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustBackup(nil, hostileSource(t))
	ctx := context.Background()
	r := dmgOpen(t, e.repo)
	raw := []byte(`{"nodes":[{"name":"..","type":"file","mode":420,"uid":0,"gid":0,"mtime":"2024-01-02T03:04:05Z","ctime":"2024-01-02T03:04:05Z","size":0}]}`)
	res, err := r.SaveBlob(ctx, pack.TreeBlob, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Now(), Host: "attacker", Paths: []string{"/x"}, Source: snapshot.Source{Kind: "files"}, Tree: res.ID}
	if err := snapshot.Save(ctx, r, sn); err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, args := range [][]string{
		{"restore", sn.ID.String(), "--target", t.TempDir()},
		{"restore", sn.ID.String(), "--target", t.TempDir(), "--ignore-errors"},
		{"ls", sn.ID.String()},
		{"check"},
	} {
		if _, stderr, code := e.run(args...); code != exitDamaged {
			t.Errorf("hoard %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, exitDamaged, stderr)
		}
	}
}

// TestE2EDamagedLockFile: check reports a lock file it cannot read (exit
// 14, naming it), unlock says it keeps it, and unlock --remove-all removes
// it, after which check passes.
func TestE2EDamagedLockFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustBackup(nil, hostileSource(t))
	name := strings.Repeat("ab", 32)
	p := filepath.Join(e.repo, "locks", name)
	if err := os.WriteFile(p, []byte("not a lock file at all, just some bytes of damage"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := e.run("check")
	if code != exitDamaged || !strings.Contains(out, "locks/"+name) {
		t.Errorf("check with a damaged lock: exit %d, want %d naming locks/%s\n%s%s", code, exitDamaged, name, out, stderr)
	}
	_, stderr, code = e.run("unlock")
	if code != 0 || !strings.Contains(stderr, "locks/"+name) || !strings.Contains(stderr, "--remove-all") {
		t.Errorf("unlock with a damaged lock: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("unlock removed the damaged lock file: %v", err)
	}
	out = e.mustRun("unlock", "--remove-all")
	if !strings.Contains(out, "removed 1 damaged lock") {
		t.Errorf("unlock --remove-all: %s", out)
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("unlock --remove-all left the damaged lock file")
	}
	e.mustRun("check")
}

// TestE2EKeyFileDamageIsNotAWrongPassword: a damaged key file is named and
// called damaged (exit 14), no key files at all are called missing (exit
// 14); only a wrong passphrase says "wrong password" (exit 12).
func TestE2EKeyFileDamageIsNotAWrongPassword(t *testing.T) {
	t.Parallel()
	keyFile := func(e *env) string {
		t.Helper()
		ks, _ := filepath.Glob(filepath.Join(e.repo, "keys", "*"))
		if len(ks) != 1 {
			t.Fatalf("key files: %v", ks)
		}
		return ks[0]
	}
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, p string)
		code   int
		say    []string
	}{
		{"flipped byte", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			_ = os.WriteFile(p, b, 0o600)
		}, exitDamaged, []string{"damaged", "keys/"}},
		{"cut short", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			_ = os.WriteFile(p, b[:len(b)-10], 0o600)
		}, exitDamaged, []string{"damaged", "keys/"}},
		{"not OpenPGP", func(t *testing.T, p string) {
			_ = os.WriteFile(p, []byte("hello\n"), 0o600)
		}, exitDamaged, []string{"not an OpenPGP message", "keys/"}},
		{"missing", func(t *testing.T, p string) {
			_ = os.Remove(p)
		}, exitDamaged, []string{"no key files"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t).on(t)
			p := keyFile(e)
			c.damage(t, p)
			_, stderr, code := e.run("snapshots")
			if code != c.code || strings.Contains(stderr, "wrong password") {
				t.Errorf("exit %d, want %d, and not \"wrong password\"; stderr %q", code, c.code, stderr)
			}
			for _, s := range c.say {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not say %q", stderr, s)
				}
			}
		})
	}
	e := newEnv(t)
	if err := os.WriteFile(e.pwFile, []byte("not the passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run("snapshots"); code != exitWrongKey || !strings.Contains(stderr, "wrong password") {
		t.Errorf("wrong passphrase: exit %d, stderr %q", code, stderr)
	}
}
