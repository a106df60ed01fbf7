package main

// Point-in-time recovery with a GPG-recipient repository whose archiving
// host holds only a write-only key, and with hoard killed during pushes.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestE2EPITRGPGWriteOnly(t *testing.T) {
	t.Parallel()
	gpgRequire(t)
	p := newPITREnv(t)
	h := gpgNewHome(t)
	const pass = "pitr gpg passphrase"
	fpr := h.genKey(t, "PITR <pitr@example.com>", "future-default", "never", pass)
	pub, _ := os.ReadFile(h.exportPublic(t, fpr))
	sec, _ := os.ReadFile(h.exportSecret(t, fpr, pass))
	pubFile := p.writeFile("recipient.gpg", pub)
	// The archiving host: a write-only key under the passphrase file; the
	// full key is encrypted to the GPG key, which this host does not have.
	out := p.mustRun(nil, "init", "--gpg-recipient", pubFile, "--write-only-key", "--s2k", "iterated")
	if !strings.Contains(out, fpr) {
		t.Fatalf("init does not name the recipient:\n%s", out)
	}
	reader := []string{"HOARD_GPG_SECRET_KEY=" + p.writeFile("secret.gpg", sec),
		"HOARD_GPG_PASSPHRASE_FILE=" + p.writeFile("gpg-pass", []byte(pass+"\n"))}

	_, cfgEnv, between := pitrSetup(t, p, p.env)
	wo := p.mustRun(nil, "key", "list")
	if !strings.Contains(wo, "write-only") {
		t.Fatalf("key list:\n%s", wo)
	}

	// The write-only key pushes but cannot fetch.
	seg := baseStartWAL(t, p)
	_, stderr, code := p.run(nil, "wal", "fetch", "--db", "main", seg, filepath.Join(p.root, "x"))
	if code != exitWriteOnly {
		t.Errorf("fetch with the write-only key: exit %d, %s", code, stderr)
	}

	// The segment after the base backup's first holds rows 2 and 3: take
	// its entry away and a restore to the time between them fails naming
	// it; put it back and the restore works.
	var next string
	{
		var n uint64
		fmt.Sscanf(seg[16:], "%X", &n)
		next = fmt.Sprintf("%s%08X", seg[:16], n+1)
	}
	entry := filepath.Join(p.root, "repo", "wal", "main_"+next)
	if err := os.Rename(entry, entry+".away"); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, cfgEnv...), reader...)
	_, stderr, code = p.run(env, "db", "restore", "main", "--to-time", between, "--data-dir", filepath.Join(p.root, "r0"))
	if code != exitDamaged || !strings.Contains(stderr, next) {
		t.Errorf("restore past a missing segment: exit %d, stderr %q (want it to name %s)", code, stderr, next)
	}
	if err := os.Rename(entry+".away", entry); err != nil {
		t.Fatal(err)
	}

	// The restore host opens the repository with the GPG secret key; so
	// does the restore_command it writes.
	r1, out := p.restore(t, env, "r1", "--to-time", between)
	if got := r1.rows(); got != "1,2" {
		t.Fatalf("restore with the GPG key to %s holds rows %q, want 1,2\n%s", between, got, out)
	}
	conf, _ := os.ReadFile(filepath.Join(r1.data, "postgresql.auto.conf"))
	if strings.Contains(string(conf), pass) || !strings.Contains(string(conf), "HOARD_GPG_SECRET_KEY=") {
		t.Errorf("restore_command:\n%s", conf)
	}
}

// hoard is killed at random points of its first push of every segment;
// PostgreSQL retries, and the archive ends up whole: no gap, no damaged
// segment, and a restore to the end has every row.
func TestE2EPITRKilledPush(t *testing.T) {
	p := newPITREnv(t)
	p.mustRun(nil, "init", "--s2k", "iterated")
	marks := filepath.Join(p.root, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	p.chown(marks)
	// The first try of each file runs hoard and kills it after 0 to 290 ms
	// (most pushes take longer); later tries push normally.
	script := fmt.Sprintf(`#!/bin/sh
f=$(basename "$1")
if [ ! -e %[1]s/"$f" ]; then
  touch %[1]s/"$f"
  %[2]s &
  pid=$!
  sleep 0.$(( $(od -An -N1 -tu1 /dev/urandom) %% 30 ))
  kill -9 $pid 2>/dev/null
  wait $pid
  exit 1
fi
exec %[2]s
`, marks, p.archiveCommand(p.env, "main")[:len(p.archiveCommand(p.env, "main"))-2]+`"$1"`)
	wrapper := p.writeFile("archive.sh", []byte(script))
	os.Chmod(wrapper, 0o755)
	c := p.newCluster("primary", wrapper+" %p")
	cfg := p.writeFile("hoard.toml", []byte(fmt.Sprintf("[databases.main]\nurl = %q\nphysical = true\n", c.url())))
	cfgEnv := []string{"HOARD_CONFIG=" + cfg}
	c.psql("CREATE TABLE t (i int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)")
	c.psql("INSERT INTO t (i) VALUES (0)")
	c.switchAndWait()
	// hoard run takes the base backup of a database with physical = true.
	if out := p.mustRun(cfgEnv, "run"); !strings.Contains(out, "db/main.base.tar") {
		t.Fatalf("hoard run made no base backup:\n%s", out)
	}
	for i := 1; i <= 6; i++ {
		c.psql(fmt.Sprintf("INSERT INTO t (i, pad) SELECT %d, repeat(md5(random()::text), 2000)", i))
		c.switchAndWait()
	}
	log, _ := os.ReadFile(c.data + ".log")
	if !strings.Contains(string(log), "archive command failed") {
		t.Errorf("no push was killed (the server log shows no failed archive_command)")
	}
	if out, _, code := p.run(nil, "check"); code != 0 {
		t.Fatalf("check after killed pushes: exit %d\n%s", code, out)
	}
	list := p.mustRun(nil, "wal", "list", "--db", "main")
	if !strings.Contains(list, "-\n") {
		t.Errorf("wal list after killed pushes:\n%s", list)
	}
	c.stop()
	r, out := p.restore(t, cfgEnv, "r1", "--to-end")
	if got := r.rows(); got != "0,1,2,3,4,5,6" {
		t.Fatalf("restore to the end after killed pushes holds %q\n%s", got, out)
	}
}
