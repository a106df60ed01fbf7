package fuzz

import (
	"maps"
	"testing"

	"github.com/hoard-backup/hoard/dump"
)

// FuzzRowCounter feeds the dump row counters arbitrary bytes, as a restore
// drill may when it reads a damaged dump: no panic, and the same answer
// however the bytes are split between writes (a backup's reads split the
// stream anywhere).
func FuzzRowCounter(f *testing.F) {
	f.Add([]byte("\\restrict k\nCOPY public.t (a, b) FROM stdin;\n1\tx\\ny\n2\t\\N\n\\.\n\nINSERT INTO public.t VALUES (1, E'a\\'b'), (2, '$$');\n"), uint16(17))
	f.Add([]byte("/*!40101 SET NAMES utf8mb4 */;\nINSERT INTO `a``b` VALUES (1,'x\\'),(\\\\'),(2,0x00);\n-- c\n"), uint16(40))
	f.Add([]byte("CREATE TABLE \"t;\"(a);\nINSERT INTO \"t;\" VALUES(replace('a\\nb','\\n',char(10)));\nCREATE FUNCTION f() AS $q$ ; $q$;\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		for _, e := range []string{dump.Postgres, dump.MySQL, dump.SQLite} {
			whole := dump.NewRowCounter(e, "sql")
			_, _ = whole.Write(data)
			r1, err1 := whole.Rows()
			parts := dump.NewRowCounter(e, "sql")
			at := int(split) % (len(data) + 1)
			_, _ = parts.Write(data[:at])
			for _, b := range data[at:] {
				_, _ = parts.Write([]byte{b})
			}
			r2, err2 := parts.Rows()
			if (err1 == nil) != (err2 == nil) || !maps.Equal(r1, r2) {
				t.Fatalf("%s: whole %v %v; split at %d %v %v", e, r1, err1, at, r2, err2)
			}
			for n, v := range r1 {
				if v < 0 || len(n) > 1024 {
					t.Fatalf("%s: table %q: %d", e, n, v)
				}
			}
		}
	})
}
