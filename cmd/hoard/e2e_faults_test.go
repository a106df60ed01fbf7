package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoard-backup/hoard/backends/s3/s3test"
)

// faultTree writes n files of size bytes each under dir/name, from seed,
// and records them in want (keyed by path relative to dir/name).
func faultTree(t *testing.T, dir, name string, seed uint64, n, size int, want map[string][]byte) {
	t.Helper()
	for i := range n {
		b := make([]byte, size)
		io.ReadFull(newDataGen(seed+uint64(i)), b)
		p := fmt.Sprintf("d%02d/f-%d-%03d.bin", i%4, seed, i)
		want[p] = b
		full := filepath.Join(dir, name, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// restoredFiles returns the regular files under root (relative paths) and
// their contents.
func restoredFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == root {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			got[filepath.ToSlash(rel)] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// mustRestoreIdentical restores latest into a fresh folder and requires
// exactly want under it.
func mustRestoreIdentical(t *testing.T, e *env, want map[string][]byte) {
	t.Helper()
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	got := restoredFiles(t, filepath.Join(target, "site"))
	if len(got) != len(want) {
		t.Fatalf("restore: %d files, want %d", len(got), len(want))
	}
	for p, b := range want {
		if !bytes.Equal(got[p], b) {
			t.Fatalf("restore: %s differs", p)
		}
	}
}

// TestE2EBackendFaults cuts the connection to an S3 server in the middle of
// an upload and of a download: the command either completes through the
// retry layer or fails cleanly, and the repository stays sound.
func TestE2EBackendFaults(t *testing.T) {
	hoardBinary(t) // build before the S3 server changes the working directory
	endpoint, access, secret := s3test.Start(t)
	proxy := s3test.NewProxy(t, endpoint)
	// s3test's storage outlives one run of the test (-count=3): a fresh path.
	repo := fmt.Sprintf("s3+http://%s/hoard-faults/repo-%016x", proxy.Addr, rand.Uint64())
	e := remoteEnv(t, repo,
		"AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret)
	seed := testSeed(t, 11)

	srcDir := t.TempDir()
	src := filepath.Join(srcDir, "site")
	want := map[string][]byte{}
	faultTree(t, srcDir, "site", seed, 15, 2<<20, want) // 30 MiB
	e.mustRun("init", "--s2k", "iterated")
	e.mustBackup(nil, src)

	// (1) The connection is cut in the middle of uploading a pack.
	t.Run("upload", func(t *testing.T) {
		e := e.on(t)
		faultTree(t, srcDir, "site", seed+1000, 6, 2<<20, want) // 12 MiB new
		before := proxy.Cuts()
		proxy.CutUpload(3 << 20)
		stdout, stderr, code := e.run("--json", "backup", src)
		proxy.Disarm()
		if proxy.Cuts() == before {
			t.Fatalf("the proxy cut no connection")
		}
		if code == 0 {
			t.Logf("backup through a cut upload: succeeded (retried)")
			if !strings.Contains(stdout, `"id"`) {
				t.Fatalf("backup exit 0 without a snapshot: %s", stdout)
			}
		} else {
			t.Logf("backup through a cut upload: exit %d: %s", code, strings.TrimSpace(stderr))
			if strings.TrimSpace(stderr) == "" {
				t.Fatalf("backup failed (exit %d) without a message", code)
			}
		}
		e.mustRun("check")
		e.mustRun("check", "--read-data")
		e.mustBackup(nil, src)
		mustRestoreIdentical(t, e, want)
	})

	// (1b) An outage: every connection that uploads more than a little is
	// cut, so the retries run out and the backup must fail cleanly.
	t.Run("upload-outage", func(t *testing.T) {
		e := e.on(t)
		faultTree(t, srcDir, "site", seed+2000, 3, 2<<20, want) // 6 MiB new
		stop := outage(proxy, func() { proxy.CutUpload(256 << 10) })
		before := proxy.Cuts()
		_, stderr, code := e.run("--json", "backup", src)
		stop()
		t.Logf("backup through an outage: exit %d after %d cuts: %s", code, proxy.Cuts()-before, lastLine(stderr))
		if code == 0 {
			t.Fatalf("backup succeeded though every upload was cut")
		}
		if strings.TrimSpace(stderr) == "" {
			t.Fatalf("backup failed (exit %d) without a message", code)
		}
		e.mustRun("check")
		e.mustRun("check", "--read-data")
		e.mustBackup(nil, src)
		mustRestoreIdentical(t, e, want)
	})

	// (2) The connection is cut in the middle of downloading a pack, with
	// no cache to serve it.
	t.Run("download", func(t *testing.T) {
		e := e.on(t)
		e.extraEnv = append(e.extraEnv, "HOARD_NO_CACHE=1")
		target := t.TempDir()
		before := proxy.Cuts()
		proxy.CutDownload(5 << 20)
		_, stderr, code := e.run("restore", "latest", "--target", target)
		proxy.Disarm()
		if proxy.Cuts() == before {
			t.Fatalf("the proxy cut no connection")
		}
		got := restoredFiles(t, filepath.Join(target, "site"))
		for p, b := range got {
			w, ok := want[p]
			if !ok {
				t.Errorf("restore through a cut download left a stray file %s", p)
			} else if !bytes.Equal(b, w) {
				t.Errorf("restore through a cut download left a wrong %s (exit %d)", p, code)
			}
		}
		if code == 0 {
			t.Logf("restore through a cut download: succeeded (retried)")
			if len(got) != len(want) {
				t.Fatalf("restore exit 0 with %d files, want %d", len(got), len(want))
			}
		} else {
			t.Logf("restore through a cut download: exit %d: %s", code, strings.TrimSpace(stderr))
			if strings.TrimSpace(stderr) == "" {
				t.Fatalf("restore failed (exit %d) without a message", code)
			}
		}
		mustRestoreIdentical(t, e, want)
	})

	// (2b) An outage of downloads: the restore must fail without leaving a
	// wrong file.
	t.Run("download-outage", func(t *testing.T) {
		e := e.on(t)
		e.extraEnv = append(e.extraEnv, "HOARD_NO_CACHE=1")
		target := t.TempDir()
		before := proxy.Cuts()
		stop := outage(proxy, func() { proxy.CutDownload(256 << 10) })
		_, stderr, code := e.run("restore", "latest", "--target", target)
		stop()
		t.Logf("restore through an outage: exit %d after %d cuts: %s", code, proxy.Cuts()-before, lastLine(stderr))
		got := restoredFiles(t, filepath.Join(target, "site"))
		for p, b := range got {
			w, ok := want[p]
			if !ok {
				t.Errorf("restore through an outage left a stray file %s", p)
			} else if !bytes.Equal(b, w) {
				t.Errorf("restore through an outage left a wrong %s (exit %d)", p, code)
			}
		}
		if code == 0 {
			t.Fatalf("restore succeeded though every download was cut")
		}
		if code == exitDamaged {
			t.Fatalf("an unreachable backend was reported as damaged data (exit 14): %s", lastLine(stderr))
		}
		if strings.TrimSpace(stderr) == "" {
			t.Fatalf("restore failed (exit %d) without a message", code)
		}
		t.Logf("restore through an outage: %d of %d files restored before failing", len(got), len(want))
		mustRestoreIdentical(t, e, want)
	})
}

// outage arms a fault with arm and re-arms it each time it fires, until the
// returned stop is called, which also disarms the proxy.
func outage(proxy *s3test.Proxy, arm func()) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		last := proxy.Cuts()
		arm()
		for {
			select {
			case <-done:
				proxy.Disarm()
				return
			case <-time.After(time.Millisecond):
			}
			if c := proxy.Cuts(); c != last {
				last = c
				arm()
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
