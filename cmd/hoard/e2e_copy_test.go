package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/s3/s3test"
)

// copyResult is `hoard --json copy`'s output.
type copyResult struct {
	Copied []struct {
		Source string `json:"source"`
		Target string `json:"target"`
	} `json:"copied"`
	Skipped     []struct{} `json:"skipped"`
	BlobsNew    uint64     `json:"blobs_new"`
	BytesStored uint64     `json:"bytes_stored"`
}

// copyTo returns the environment variables that name target as copy's
// target, opened with its passphrase file.
func copyTo(target *env) []string {
	return []string{"HOARD_TO_REPOSITORY=" + target.repo, "HOARD_TO_PASSWORD_FILE=" + target.pwFile}
}

// copySource makes a repository with two snapshots of a small tree (the
// second with a changed and an added file) and returns it with the tree.
func copySource(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, src, testSeed(t, 11))
	e.mustBackup(nil, "--tag", "first", src)
	gpgWriteFile(t, filepath.Join(src, "media", "uploads", "new.txt"), []byte("added after the first backup"))
	gpgWriteFile(t, filepath.Join(src, "db.sql"), []byte("changed"))
	e.mustBackup(nil, src)
	return e, src
}

// copyAndVerify copies everything from src to target (whose passphrase
// file opens it, maybe write-only), restores the newest snapshot from the
// target with reader and compares it with tree; a second copy sends
// nothing.
func copyAndVerify(t *testing.T, src, target, reader *env, tree string, toEnv []string) {
	t.Helper()
	c := gpgWith(t, src, toEnv...)
	var res copyResult
	c.mustRunJSON(&res, "copy")
	if len(res.Copied) != 2 || res.BlobsNew == 0 {
		t.Fatalf("first copy: %+v", res)
	}
	dst := t.TempDir()
	reader.mustRun("restore", "latest", "--target", dst)
	gpgSameSums(t, "restore from the copy", gpgSums(t, tree), gpgSums(t, filepath.Join(dst, "site")))
	reader.mustRun("check", "--read-data")
	var again copyResult
	c.mustRunJSON(&again, "copy")
	if len(again.Copied) != 0 || len(again.Skipped) != 2 || again.BlobsNew != 0 || again.BytesStored != 0 {
		t.Fatalf("second copy sent something: %+v", again)
	}
	var sns []struct {
		Tags     []string `json:"tags"`
		Original string   `json:"original"`
	}
	reader.mustRunJSON(&sns, "snapshots")
	if len(sns) != 2 || strings.Join(sns[0].Tags, ",") != "first" || sns[0].Original == "" {
		t.Fatalf("target snapshots: %+v", sns)
	}
}

func TestE2ECopyLocal(t *testing.T) {
	t.Parallel()
	src, tree := copySource(t)
	t.Run("passphrase", func(t *testing.T) {
		target := newEnv(t)
		copyAndVerify(t, src, target, target, tree, copyTo(target))
	})
	t.Run("write-only target", func(t *testing.T) {
		full := newEnv(t)
		woPass := filepath.Join(t.TempDir(), "wo")
		gpgWriteFile(t, woPass, []byte("write only\n"))
		full.mustRun("key", "add", "--write-only", "--s2k", "iterated", "--new-password-file", woPass)
		wo := *full
		wo.pwFile = woPass
		copyAndVerify(t, src, full, full, tree, copyTo(&wo))
	})
	t.Run("refusals", func(t *testing.T) {
		if _, stderr, code := src.run("copy"); code != exitUsage || !strings.Contains(stderr, "--to") {
			t.Errorf("copy without --to: exit %d, %s", code, stderr)
		}
		self := gpgWith(t, src, copyTo(src)...)
		if _, _, code := self.run("copy"); code != exitUsage {
			t.Errorf("copy onto itself: exit %d", code)
		}
		bad := filepath.Join(t.TempDir(), "bad")
		gpgWriteFile(t, bad, []byte("wrong\n"))
		target := newEnv(t)
		wrong := gpgWith(t, src, "HOARD_TO_REPOSITORY="+target.repo, "HOARD_TO_PASSWORD_FILE="+bad)
		if _, _, code := wrong.run("copy"); code != exitWrongKey {
			t.Errorf("wrong target passphrase: exit %d, want %d", code, exitWrongKey)
		}
	})
}

// TestE2ECopyGPG copies from a repository whose full key is encrypted to a
// GPG key (read with the secret key) into a passphrase repository, and
// from that back into another GPG repository through its write-only key.
func TestE2ECopyGPG(t *testing.T) {
	t.Parallel()
	h := gpgNewHome(t)
	const pass = "copy gpg passphrase"
	fpr := h.genKey(t, "Copy Test <copy@example.com>", "future-default", "never", pass)
	passFile := filepath.Join(t.TempDir(), "gpg-pass")
	gpgWriteFile(t, passFile, []byte(pass+"\n"))
	newGPG := func() (writer, reader *env) {
		e := newEnvNoInit(t)
		e.extraEnv = []string{"GNUPGHOME=" + h.dir}
		e.mustRun("init", "--gpg-recipient", h.exportPublic(t, fpr), "--write-only-key", "--s2k", "iterated")
		return e, gpgWith(t, e, "HOARD_GPG_SECRET_KEY="+h.exportSecret(t, fpr, pass), "HOARD_GPG_PASSPHRASE_FILE="+passFile)
	}
	writer, reader := newGPG()
	tree := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, tree, testSeed(t, 12))
	writer.mustBackup(nil, "--tag", "first", tree)
	gpgWriteFile(t, filepath.Join(tree, "db.sql"), []byte("changed"))
	writer.mustBackup(nil, tree)

	plain := newEnv(t)
	copyAndVerify(t, reader, plain, plain, tree, copyTo(plain))
	back, backReader := newGPG()
	copyAndVerify(t, plain, back, backReader, tree, copyTo(back))
}

func TestE2ECopyRemote(t *testing.T) {
	t.Parallel()
	src, tree := copySource(t)
	t.Run("sftp", func(t *testing.T) {
		v := testServers(t)
		target := remoteEnv(t, v["HOARD_TEST_SFTP_URL"]+fmt.Sprintf("hoard-copy-%d", rand.Uint64()),
			"HOARD_SFTP_KEY_FILE="+v["HOARD_TEST_SFTP_KEY"], "HOARD_SFTP_KNOWN_HOSTS="+v["HOARD_TEST_SFTP_KNOWN_HOSTS"])
		target.pwFile = src.pwFile
		target.mustRun("init", "--s2k", "iterated")
		copyAndVerify(t, gpgWith(t, src, target.extraEnv...), target, target, tree, copyTo(target))
	})
	t.Run("s3", func(t *testing.T) {
		hoardBinary(t) // build before the S3 server changes the working directory
		endpoint, access, secret := s3test.Start(t)
		target := remoteEnv(t, "s3+http://"+endpoint+"/hoard-copy/repo", "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret)
		target.pwFile = src.pwFile
		target.mustRun("init", "--s2k", "iterated")
		copyAndVerify(t, gpgWith(t, src, target.extraEnv...), target, target, tree, copyTo(target))
	})
}

// TestE2ECopyResume kills a copy (SIGKILL) while it sends the second of two
// snapshots, after the first has landed; the next copy skips the first,
// copies the second, and the target checks clean.
func TestE2ECopyResume(t *testing.T) {
	t.Parallel()
	src := newEnv(t)
	tree := filepath.Join(t.TempDir(), "site")
	gpgMakeTree(t, tree, testSeed(t, 13))
	src.mustBackup(nil, tree)
	big := make([]byte, 96<<20)
	rng := rand.New(rand.NewPCG(testSeed(t, 13), 2))
	for i := 0; i < len(big); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			big[i+j] = byte(v >> (8 * j))
		}
	}
	gpgWriteFile(t, filepath.Join(tree, "large.bin"), big)
	src.mustBackup(nil, tree)
	target := newEnv(t)
	c := gpgWith(t, src, copyTo(target)...)
	cmd := c.command("copy")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Snapshot files, not the temporary files they are written as.
	landed := func() int {
		names, _ := os.ReadDir(filepath.Join(target.repo, "snapshots"))
		n := 0
		for _, d := range names {
			if len(d.Name()) == 64 && !strings.Contains(d.Name(), ".") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if landed() >= 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the first snapshot did not land within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	err := cmd.Wait()
	if landed() != 1 {
		t.Fatalf("the copy finished before it could be killed (%v): make the second snapshot larger", err)
	}
	var res copyResult
	c.mustRunJSON(&res, "copy")
	if len(res.Copied) != 1 || len(res.Skipped) != 1 {
		t.Fatalf("resumed copy: %+v", res)
	}
	target.mustRun("unlock")
	target.mustRun("check", "--read-data")
	dst := t.TempDir()
	target.mustRun("restore", "latest", "--target", dst)
	gpgSameSums(t, "restore after a resumed copy", gpgSums(t, tree), gpgSums(t, filepath.Join(dst, "site")))
}

// TestE2ECopyAfterRun names an offsite repository in the config file's
// [copy.offsite]: each hoard run copies its snapshot there, and hoard copy
// --target offsite finds nothing left to copy.
func TestE2ECopyAfterRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	offsite := newEnv(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "site")
	gpgMakeTree(t, src, testSeed(t, 14))
	cfg := filepath.Join(dir, "hoard.toml")
	gpgWriteFile(t, cfg, []byte(fmt.Sprintf("[repository]\nlocation = %q\npassword_file = %q\n\n[media.site]\npaths = [%q]\n\n[copy.offsite]\nlocation = %q\npassword_file = %q\n",
		e.repo, e.pwFile, src, offsite.repo, offsite.pwFile)))
	c := gpgWith(t, e, "HOARD_CONFIG="+cfg)
	out := c.mustRun("run")
	if !strings.Contains(out, "copy to [copy.offsite]") || !strings.Contains(out, "1 snapshot copied") {
		t.Fatalf("run did not copy:\n%s", out)
	}
	gpgWriteFile(t, filepath.Join(src, "db.sql"), []byte("day two"))
	c.mustRun("run")
	if n := len(offsite.snapshotIDs()); n != 2 {
		t.Fatalf("offsite has %d snapshots after two runs, want 2", n)
	}
	var res copyResult
	c.mustRunJSON(&res, "copy", "--target", "offsite")
	if len(res.Copied) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("copy --target after the runs: %+v", res)
	}
	dst := t.TempDir()
	offsite.mustRun("restore", "latest", "--target", dst)
	gpgSameSums(t, "offsite restore", gpgSums(t, src), gpgSums(t, filepath.Join(dst, "media", "site", "site")))
	if _, _, code := c.run("copy", "--target", "nowhere"); code != exitUsage {
		t.Errorf("copy --target of an unknown section: exit %d", code)
	}
}
