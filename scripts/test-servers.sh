#!/usr/bin/env bash
# Starts the real servers that the remote backends' tests run against, on
# 127.0.0.1 only, and writes how to reach them to $STATE/env:
#
#   OpenSSH sshd  127.0.0.1:2222  key and password auth, internal-sftp
#   vsftpd        127.0.0.1:2121  local users, passive ports 30000-30100,
#                                 explicit TLS (AUTH TLS) with a self-signed cert
#
# Both log in as the test user hoardtest (home /srv/hoardtest). The tests
# (backends/sftp, backends/ftp) read $STATE/env; with CI set they fail when
# the servers cannot be reached.
#
# Idempotent: run it again at any time. It installs openssh-server and vsftpd
# with apt-get when missing, keeps the user, keys and password it made before,
# and restarts a server only when it is down or its config changed. Needs root.
#
# If it can, it also mounts a 1 MiB tmpfs at /srv/hoardtest/full for the
# full-disk tests (HOARD_TEST_FULL_DIR in the env file).
set -euo pipefail

STATE=${HOARD_TEST_STATE:-/var/lib/hoard-test}
USER_NAME=hoardtest
HOME_DIR=/srv/hoardtest
SSH_PORT=2222
FTP_PORT=2121

if [ "$(id -u)" -ne 0 ]; then
  echo "test-servers.sh: must run as root (it installs packages, adds a user and starts daemons)" >&2
  exit 1
fi

log() { echo "test-servers: $*"; }

# --- packages ---------------------------------------------------------------
install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  local pkgs=(openssh-server vsftpd openssl)
  if ! apt-get install -y --no-install-recommends "${pkgs[@]}" >/tmp/hoard-test-apt.log 2>&1; then
    log "apt-get install failed; running apt-get update first"
    apt-get update >>/tmp/hoard-test-apt.log 2>&1
    apt-get install -y --no-install-recommends "${pkgs[@]}" >>/tmp/hoard-test-apt.log 2>&1 ||
      { cat /tmp/hoard-test-apt.log >&2; exit 1; }
  fi
}
if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/sbin/vsftpd ] || ! command -v openssl >/dev/null; then
  log "installing openssh-server and vsftpd"
  install_packages
fi

install -d -m 0755 "$STATE"

# --- user -------------------------------------------------------------------
if ! id "$USER_NAME" >/dev/null 2>&1; then
  log "adding user $USER_NAME"
  useradd --home-dir "$HOME_DIR" --create-home --shell /bin/bash "$USER_NAME"
fi
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR"
if ! grep -qx /bin/bash /etc/shells; then echo /bin/bash >>/etc/shells; fi
if [ ! -s "$STATE/password" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$STATE/password")
fi
PASSWORD=$(cat "$STATE/password")
# A password (never '!' or '*' in the shadow file): sshd without PAM refuses
# locked accounts even for key logins, and vsftpd needs it for FTP logins.
echo "$USER_NAME:$PASSWORD" | chpasswd

# --- keys and certificates --------------------------------------------------
[ -s "$STATE/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C hoard-test-host -f "$STATE/ssh_host_ed25519_key"
[ -s "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hoard-test-client -f "$STATE/id_ed25519"
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR/.ssh"
install -m 0600 -o "$USER_NAME" -g "$USER_NAME" "$STATE/id_ed25519.pub" "$HOME_DIR/.ssh/authorized_keys"
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$STATE/ssh_host_ed25519_key.pub")" >"$STATE/known_hosts"
if [ ! -s "$STATE/ftp-cert.pem" ] || [ ! -s "$STATE/ftp-key.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$STATE/ftp-key.pem" -out "$STATE/ftp-cert.pem" 2>/dev/null
  chmod 0600 "$STATE/ftp-key.pem"
fi

# --- a tiny file system for full-disk tests (optional) ----------------------
FULL_DIR=""
if mountpoint -q "$HOME_DIR/full" ||
   { install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$HOME_DIR/full" &&
     mount -t tmpfs -o "size=1m,mode=0700,uid=$(id -u $USER_NAME),gid=$(id -g $USER_NAME)" hoard-test-full "$HOME_DIR/full" 2>/dev/null; }; then
  FULL_DIR=full
else
  log "no tmpfs for the full-disk tests (mount not permitted); they will be skipped"
fi

# --- config files -----------------------------------------------------------
# write_if_changed FILE: writes stdin to FILE; returns 0 if it changed.
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  mv "$tmp" "$1"
}

SSHD_CHANGED=0
write_if_changed "$STATE/sshd_config" <<EOF && SSHD_CHANGED=1
# hoard test sshd (scripts/test-servers.sh)
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $STATE/ssh_host_ed25519_key
PidFile $STATE/sshd.pid
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_NAME
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
# The conformance suite opens many connections at once.
MaxStartups 200
MaxSessions 50
LogLevel INFO
EOF

FTP_CHANGED=0
install -d -m 0755 /var/run/vsftpd/empty
write_if_changed "$STATE/vsftpd.conf" <<EOF && FTP_CHANGED=1
# hoard test vsftpd (scripts/test-servers.sh)
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=077
file_open_mode=0600
chroot_local_user=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=30000
pasv_max_port=30100
port_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
pam_service_name=vsftpd
userlist_enable=NO
max_clients=0
max_per_ip=0
idle_session_timeout=300
delay_failed_login=0
data_connection_timeout=120
xferlog_enable=NO
vsftpd_log_file=$STATE/vsftpd.log
dual_log_enable=NO
ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=NO
force_local_data_ssl=NO
require_ssl_reuse=NO
ssl_ciphers=HIGH
rsa_cert_file=$STATE/ftp-cert.pem
rsa_private_key_file=$STATE/ftp-key.pem
EOF

# --- daemons ----------------------------------------------------------------
# running PIDFILE: the daemon of PIDFILE runs (and is ours: a stale pid
# file may name a pid reused by another program).
running() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$STATE/"
}

stop() {
  if running "$1"; then
    kill "$(cat "$1")" 2>/dev/null || true
    for _ in $(seq 50); do running "$1" || break; sleep 0.1; done
  fi
  rm -f "$1"
}

mkdir -p /run/sshd
if [ "$SSHD_CHANGED" = 1 ] || ! running "$STATE/sshd.pid"; then
  stop "$STATE/sshd.pid"
  /usr/sbin/sshd -t -f "$STATE/sshd_config"
  log "starting sshd on 127.0.0.1:$SSH_PORT"
  /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
fi

if [ "$FTP_CHANGED" = 1 ] || ! running "$STATE/vsftpd.pid"; then
  stop "$STATE/vsftpd.pid"
  log "starting vsftpd on 127.0.0.1:$FTP_PORT"
  setsid /usr/sbin/vsftpd "$STATE/vsftpd.conf" </dev/null >>"$STATE/vsftpd.out" 2>&1 &
  echo $! >"$STATE/vsftpd.pid"
fi

# --- wait until both greet --------------------------------------------------
# greets PORT PREFIX: the server on PORT sends a first line starting with PREFIX.
greets() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c ${#2} <&3" 2>/dev/null | grep -q "^$2"
}
for port_prefix in "$SSH_PORT SSH-" "$FTP_PORT 220"; do
  set -- $port_prefix
  ok=0
  for _ in $(seq 100); do
    if greets "$1" "$2"; then ok=1; break; fi
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    log "server on 127.0.0.1:$1 does not answer; logs:" >&2
    tail -n 20 "$STATE"/sshd.log "$STATE"/vsftpd.out "$STATE"/vsftpd.log 2>/dev/null >&2 || true
    exit 1
  fi
done

# --- connection details for the tests ----------------------------------------
(umask 077; cat >"$STATE/env" <<EOF
HOARD_TEST_SFTP_URL=sftp://$USER_NAME@127.0.0.1:$SSH_PORT/
HOARD_TEST_SFTP_KEY=$STATE/id_ed25519
HOARD_TEST_SFTP_KNOWN_HOSTS=$STATE/known_hosts
HOARD_TEST_SFTP_PASSWORD=$PASSWORD
HOARD_TEST_FTP_URL=ftp://$USER_NAME@127.0.0.1:$FTP_PORT/
HOARD_TEST_FTP_PASSWORD=$PASSWORD
HOARD_TEST_FTP_CA=$STATE/ftp-cert.pem
HOARD_TEST_FTP_HOME=$HOME_DIR
HOARD_TEST_FULL_DIR=$FULL_DIR
EOF
)
log "ready; connection details in $STATE/env"
