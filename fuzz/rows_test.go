package fuzz

import (
	"maps"
	"strings"
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
	// pg_dump -Fc --compress=0 of two small tables (version 1.14).
	f.Add([]byte("PGDMP\x01\x0e\x00\x04\x08\x01\x00\x00\x00\x00\x00"+strings.Repeat("\x00\x00\x00\x00\x00", 7)+
		"\x01\x01\x00\x00\x00\x01\x01\x00\x00\x00\x01\x01\x00\x00\x00"+"\x00\x01\x00\x00\x00"+
		"\x00\x07\x00\x00\x00\x00\x01\x00\x00\x00\x01\x01\x00\x00\x00\x01\x01\x00\x00\x00\x00\x01\x00\x00\x00t\x00\x0a\x00\x00\x00TABLE DATA"+
		"\x00\x03\x00\x00\x00\x01\x01\x00\x00\x00\x01\x01\x00\x00\x00\x00\x05\x00\x00\x00COPY ;\x00\x06\x00\x00\x00public"+
		strings.Repeat("\x01\x01\x00\x00\x00", 5)+"\x01\x00\x00\x00\x00\x00\x00\x00\x00"+
		"\x01\x00\x07\x00\x00\x00\x00\x06\x00\x00\x001\n2\n\\.\x00\x00\x00\x00\x00"), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		for _, ef := range [][2]string{{dump.Postgres, "sql"}, {dump.MySQL, "sql"}, {dump.SQLite, "sql"}, {dump.Postgres, "custom"}} {
			e := ef[0] + " " + ef[1]
			whole := dump.NewRowCounter(ef[0], ef[1])
			_, _ = whole.Write(data)
			r1, err1 := whole.Rows()
			parts := dump.NewRowCounter(ef[0], ef[1])
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
