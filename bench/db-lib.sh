# Shared by bench/db-series.sh and bench/db-time.sh: a PostgreSQL database
# of a given dump size on the local test server, and its daily changes.
# Source it; it defines functions only.

# PG_ADMIN is the maintenance database's URL.
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}

bench_log() { printf '%s [db-bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() {
	printf '\n[db-bench] FAILED: %s\n' "$*" >&2
	exit 1
}

# pg_url DB: the URL of database DB on the server.
pg_url() { printf '%s/%s' "${PG_ADMIN%/*}" "$1"; }

# make_db DB MB: create database DB whose pg_dump -Fc -Z0 is about MB MiB:
# an events table (~85 % of the bytes: appended daily, recent rows
# updated), a users table and an orders table.
make_db() {
	local db=$1 mb=$2
	# About 150 bytes of dump per event row, 115 per user, 95 per order.
	local events=$((mb * 1048576 * 85 / 100 / 150)) users=$((mb * 1048576 * 5 / 100 / 115)) orders=$((mb * 1048576 * 10 / 100 / 95))
	bench_log "creating $db: $events events, $users users, $orders orders"
	psql -X -q -v ON_ERROR_STOP=1 -d "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_url "$db")" >/dev/null <<SQL
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, created_at timestamptz NOT NULL, last_login timestamptz);
INSERT INTO users (email, name, created_at, last_login)
  SELECT 'user' || i || '@example.com', 'User ' || md5(i::text), '2020-01-01'::timestamptz + i * interval '37 seconds', now()
  FROM generate_series(1::bigint, $users) i;
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL, total numeric(12,2), status text, created_at timestamptz NOT NULL);
INSERT INTO orders (user_id, total, status, created_at)
  SELECT 1 + (i * 7919) % $users, (i % 10000) / 100.0, (ARRAY['new','paid','shipped','done'])[1 + i % 4], '2020-01-01'::timestamptz + i * interval '11 seconds'
  FROM generate_series(1::bigint, $orders) i;
CREATE INDEX orders_user ON orders (user_id);
CREATE TABLE events (id bigserial PRIMARY KEY, user_id bigint NOT NULL, kind text NOT NULL, payload text,
  created_at timestamptz NOT NULL, updated_at timestamptz);
INSERT INTO events (user_id, kind, payload, created_at)
  SELECT 1 + (i * 104729) % $users, (ARRAY['view','click','signup','purchase','logout'])[1 + i % 5],
    '{"page": "/p/' || (i % 5000) || '", "ref": "' || md5(i::text) || '", "ua": "' || substr(md5((i * 3)::text), 1, (20 + i % 40)::int) || '"}',
    '2021-01-01'::timestamptz + i * interval '3 seconds'
  FROM generate_series(1::bigint, $events) i;
CREATE INDEX events_created ON events (created_at);
VACUUM ANALYZE;
SQL
}

# change_db DB DAY: one day of changes, about 1 % of the dump: new events
# appended (0.8 % of the rows), 0.2 % of the events updated (among the
# newest twentieth, and 100 anywhere), 0.5 % of the users updated (anywhere)
# and 0.1 % added, 100 orders deleted.
change_db() {
	local db=$1 day=$2
	psql -X -q -v ON_ERROR_STOP=1 -d "$(pg_url "$db")" >/dev/null <<SQL
SELECT setseed(0.$day);
DO \$\$
DECLARE n bigint; m bigint; u bigint;
BEGIN
  SELECT max(id) INTO m FROM events;
  SELECT count(*) INTO u FROM users;
  n := m * 8 / 1000;
  INSERT INTO events (user_id, kind, payload, created_at)
    SELECT 1 + (i * 104729) % u, (ARRAY['view','click','signup','purchase','logout'])[1 + i % 5],
      '{"page": "/p/' || (i % 5000) || '", "ref": "' || md5((i + $day)::text) || '", "ua": "' || substr(md5((i * 3)::text), 1, (20 + i % 40)::int) || '"}',
      now() + i * interval '1 second'
    FROM generate_series(m + 1, m + n) i;
  -- 0.2 % of the rows updated, among the newest twentieth, and 100 anywhere.
  UPDATE events SET updated_at = now(), payload = payload || ' '
    WHERE id IN (SELECT (m * 19 / 20) + floor(random() * (m / 20))::bigint FROM generate_series(1, m * 2 / 1000)
           UNION SELECT 1 + floor(random() * m)::bigint FROM generate_series(1, 100));
  UPDATE users SET last_login = now() WHERE id IN (SELECT 1 + floor(random() * u)::bigint FROM generate_series(1, u / 200));
  INSERT INTO users (email, name, created_at) SELECT 'new' || $day || '-' || i || '@example.com', 'New ' || i, now() FROM generate_series(1, u / 1000) i;
  DELETE FROM orders WHERE id IN (SELECT 1 + floor(random() * (SELECT max(id) FROM orders))::bigint FROM generate_series(1, 100));
END \$\$;
VACUUM ANALYZE;
SQL
}

# dump_mb DB: the size of pg_dump -Fc -Z0 of DB, MiB.
dump_mb() { pg_dump -Fc -Z0 -d "$(pg_url "$1")" | wc -c | awk '{printf "%.1f", $1/1048576}'; }

# median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# wall LOG CMD...: run CMD with its output to LOG, print its wall time in
# seconds (2 decimals).
wall() {
	local log=$1 s e
	shift
	s=$(date +%s.%N)
	"$@" >"$log" 2>&1 || { tail -n 20 "$log" >&2; bench_die "$*"; }
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN{printf "%.2f", e-s}'
}
