package dump

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	tests := []struct {
		in, want string // arguments joined by " | "
	}{
		{"pg_dump | -Fc | postgres://u:s3cret@db.example:5432/app", "pg_dump | -Fc | postgres://u:***@db.example:5432/app"},
		{"pg_dump | --dbname=postgresql://u:p%40ss@h/db?sslmode=require", "pg_dump | --dbname=postgresql://u:***@h/db?sslmode=require"},
		{"pg_dump | postgres://u:s3c@ret@h/db", "pg_dump | postgres://u:***@h/db"},
		{"pg_dump | host=h user=u password=s3cret dbname=app", "pg_dump | host=h user=u password=*** dbname=app"},
		{"pg_dump | host=h password='a b c' dbname=app", "pg_dump | host=h password=*** dbname=app"},
		{"pg_dump | postgres://h/db?user=u&password=s3cret&sslmode=require", "pg_dump | postgres://h/db?user=u&password=***&sslmode=require"},
		{"sh | -c | PGPASSWORD=s3cret pg_dump -Fc app", "sh | -c | PGPASSWORD=*** pg_dump -Fc app"},
		{"mysqldump | -us | -ps3cret | app", "mysqldump | -us | -p*** | app"},
		{"/usr/bin/mariadb-dump | --password=s3cret | app", "/usr/bin/mariadb-dump | --password=*** | app"},
		{"sh | -c | mysqldump -u root -ps3cret app | gzip", "sh | -c | mysqldump -u root -p*** app | gzip"},
		{"env | MYSQL_PWD=s3cret | mysqldump | app", "env | MYSQL_PWD=*** | mysqldump | app"},
		{"mongodump | --password | s3cret | --db | app", "mongodump | --password | *** | --db | app"},
		// MySQL's lone --password asks for it: the next argument is the database.
		{"mysqldump | --password | app", "mysqldump | --password | app"},
		// Not secrets: left alone.
		{"pg_dump | -p5432 | -h | db | app", "pg_dump | -p5432 | -h | db | app"},
		{"tar | -cf | - | /srv/media", "tar | -cf | - | /srv/media"},
		{"curl | https://example.com/x@y", "curl | https://example.com/x@y"},
		{"rclone | cat | remote:bucket/key", "rclone | cat | remote:bucket/key"},
	}
	for _, tt := range tests {
		got := strings.Join(Redacted(strings.Split(tt.in, " | ")), " | ")
		if got != tt.want {
			t.Errorf("Redacted(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3c") || strings.Contains(got, "a b c") {
			t.Errorf("Redacted(%s) leaks the secret: %s", tt.in, got)
		}
	}
}
