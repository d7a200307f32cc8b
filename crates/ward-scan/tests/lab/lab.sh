#!/usr/bin/env bash
# The ward-scan test lab: real servers with known weaknesses on loopback addresses 127.0.77.x.
#
#   lab.sh start DIR   start every server, state and logs in DIR (prints "lab ready")
#   lab.sh stop DIR    stop every server started from DIR
#   lab.sh check       print the missing packages and exit 1 if any
#
# Needs root (ports below 1024, sshd, a local user) and the Debian packages:
#   nginx-light vsftpd openssh-server redis-server dnsmasq-base busybox-static openssl python3 (3.11, for smtpd)
# Servers (the expected findings are in tests/lab/expected.json):
#   127.0.77.10  nginx  :80 directory listing, no redirect, version shown; :443 expired cert, TLS 1.0/1.1
#   127.0.77.11  nginx  :443 self-signed certificate
#   127.0.77.12  nginx  :443 Basic auth admin/pasta
#   127.0.77.13  nginx  :80 redirect, :443 clean (trusted lab CA, HSTS, TLS 1.2+) = clean.lab.test
#   127.0.77.14  python :80 results-admin login form (POST) with admin/pasta, no HTTPS
#   127.0.77.20  vsftpd :21 anonymous login
#   127.0.77.21  sshd   :22 user "admin" with password "password"
#   127.0.77.22  busybox telnetd :23 /bin/login, same user "admin" / "password" (only when busybox
#                with telnetd is installed: `apt-get install busybox-static`; otherwise the lab
#                prints "lab ready (no telnet)" and the test drops the telnet findings)
#   127.0.77.30  redis  :6379 no authentication
#   127.0.77.53  dnsmasq :53 zone lab.test (A, TXT, MX records for the email checks)
#   127.0.77.26  python smtpd :25 mail server without STARTTLS (MX of bad.lab.test)
set -euo pipefail

LAB_USER=admin
LAB_PASSWORD=password

need() {
  local missing=()
  for bin in nginx vsftpd /usr/sbin/sshd redis-server dnsmasq openssl python3; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  python3 -c 'import smtpd' 2>/dev/null || missing+=("python3-smtpd(<=3.11)")
  if [ "$(id -u)" != 0 ]; then missing+=("root"); fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "lab: missing ${missing[*]} (apt-get install nginx-light vsftpd openssh-server redis-server dnsmasq-base busybox-static openssl; run as root)" >&2
    return 1
  fi
}

certs() {
  local d=$1/pki
  mkdir -p "$d/newcerts"
  : > "$d/index.txt"
  echo 1000 > "$d/serial"
  cat > "$d/ca.cnf" <<EOF
[ca]
default_ca = lab
[lab]
dir = $d
database = $d/index.txt
new_certs_dir = $d/newcerts
serial = $d/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
EOF
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.csr" -subj "/CN=ward lab CA" -config "$d/ca.cnf" 2>/dev/null
  openssl ca -batch -config "$d/ca.cnf" -selfsign -keyfile "$d/ca.key" -in "$d/ca.csr" -out "$d/ca.pem" \
    -startdate 20190101000000Z -enddate 20400101000000Z -extensions v3_ca -notext 2>/dev/null
  leaf() { # name san start end
    openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$1.lab.test" \
      -addext "subjectAltName=$2" -config "$d/ca.cnf" 2>/dev/null
    openssl ca -batch -config "$d/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" -in "$d/$1.csr" -out "$d/$1.pem" \
      -startdate "$3" -enddate "$4" -extensions leaf -notext 2>/dev/null
  }
  leaf expired "DNS:expired.lab.test,IP:127.0.77.10" 20200101000000Z 20200401000000Z
  leaf admin "DNS:admin.lab.test,IP:127.0.77.12" 20240101000000Z 20390101000000Z
  leaf clean "DNS:clean.lab.test,IP:127.0.77.13" 20240101000000Z 20390101000000Z
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/self.key" -out "$d/self.pem" -days 3650 \
    -subj "/CN=selfsigned.lab.test" -addext "subjectAltName=DNS:selfsigned.lab.test,IP:127.0.77.11" 2>/dev/null
}

start() {
  local dir=$1
  need
  mkdir -p "$dir"/{www,www/files,ftp,logs,nginx}
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir" "$dir/www" "$dir/www/files"
  echo "ballot.pdf" > "$dir/www/files/ballot-proof.txt"
  echo "<html><body>results</body></html>" > "$dir/www/index.html"
  certs "$dir"
  # admin/pasta for HTTP Basic (apr1 hash made by openssl)
  echo "admin:$(openssl passwd -apr1 pasta)" > "$dir/htpasswd"
  chmod 644 "$dir/htpasswd"
  cat > "$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/logs/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body; proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fcgi; uwsgi_temp_path $dir/nginx/uwsgi; scgi_temp_path $dir/nginx/scgi;
  # bad web: directory listing on plain HTTP, expired certificate with TLS 1.0 and 1.1 on HTTPS
  server { listen 127.0.77.10:80; root $dir/www/files; autoindex on; }
  server {
    listen 127.0.77.10:443 ssl;
    ssl_certificate $dir/pki/expired.pem; ssl_certificate_key $dir/pki/expired.key;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    ssl_ciphers "HIGH:!aNULL:!3DES:@SECLEVEL=0";
    root $dir/www;
  }
  # self-signed
  server {
    listen 127.0.77.11:443 ssl; server_tokens off;
    ssl_certificate $dir/pki/self.pem; ssl_certificate_key $dir/pki/self.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    add_header Strict-Transport-Security "max-age=31536000" always;
    root $dir/www;
  }
  # admin page with a default password
  server {
    listen 127.0.77.12:443 ssl; server_tokens off;
    ssl_certificate $dir/pki/admin.pem; ssl_certificate_key $dir/pki/admin.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    add_header Strict-Transport-Security "max-age=31536000" always;
    auth_basic "election admin"; auth_basic_user_file $dir/htpasswd;
    root $dir/www;
  }
  # clean, well-configured site
  server { listen 127.0.77.13:80; server_tokens off; return 301 https://clean.lab.test\$request_uri; }
  server {
    listen 127.0.77.13:443 ssl; server_tokens off;
    ssl_certificate $dir/pki/clean.pem; ssl_certificate_key $dir/pki/clean.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
    root $dir/www;
  }
}
EOF
  nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -g 'daemon on;' 2>>"$dir/logs/nginx-start.log"

  mkdir -p /var/run/vsftpd/empty "$dir/ftp/pub"
  chmod 555 "$dir/ftp"
  echo "public notice" > "$dir/ftp/pub/notice.txt"
  cat > "$dir/vsftpd.conf" <<EOF
listen=YES
listen_address=127.0.77.20
listen_port=21
background=YES
anonymous_enable=YES
anon_root=$dir/ftp
local_enable=NO
write_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
vsftpd_log_file=$dir/logs/vsftpd.log
EOF
  vsftpd "$dir/vsftpd.conf"

  if ! id "$LAB_USER" >/dev/null 2>&1; then
    useradd --no-create-home --shell /usr/sbin/nologin "$LAB_USER"
    touch "$dir/created-user"
  fi
  echo "$LAB_USER:$LAB_PASSWORD" | chpasswd
  mkdir -p /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key" <<<y >/dev/null 2>&1 || true
  cat > "$dir/sshd_config" <<EOF
ListenAddress 127.0.77.21:22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $LAB_USER
UsePAM yes
EOF
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/logs/sshd.log"

  local telnet=127.0.77.22:23
  if busybox --list 2>/dev/null | grep -qx telnetd; then
    busybox telnetd -F -b 127.0.77.22:23 -l /bin/login >"$dir/logs/telnetd.log" 2>&1 &
    echo $! > "$dir/telnetd.pid"
  else
    telnet=""
  fi

  redis-server --bind 127.0.77.30 --port 6379 --protected-mode no --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/logs/redis.log" --dir "$dir"

  dnsmasq --no-resolv --no-hosts --no-daemon --listen-address=127.0.77.53 --bind-interfaces --port=53 \
    --pid-file="$dir/dnsmasq.pid" \
    --host-record=clean.lab.test,127.0.77.13 --host-record=mx.bad.lab.test,127.0.77.26 \
    --txt-record=good.lab.test,"v=spf1 ip4:127.0.77.0/24 -all" \
    --txt-record=_dmarc.good.lab.test,"v=DMARC1; p=reject; rua=mailto:dmarc@good.lab.test" \
    --txt-record=bad.lab.test,"google-site-verification=abc" \
    --txt-record=_dmarc.bad.lab.test,"v=DMARC1; p=none" \
    --mx-host=bad.lab.test,mx.bad.lab.test,10 \
    --local=/lab.test/ >"$dir/logs/dnsmasq.log" 2>&1 &
  echo $! > "$dir/dnsmasq.pid"

  python3 -c '
import http.server
from urllib.parse import parse_qs
FORM = b"<html><body><h1>Results admin</h1><form method=\"post\" action=\"/login\"><input type=\"text\" name=\"username\"><input type=\"password\" name=\"password\"><input type=\"submit\" value=\"Log in\"></form></body></html>"
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body, location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, FORM)
    def do_POST(self):
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        q = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        if q.get("username") == ["admin"] and q.get("password") == ["pasta"]:
            self.reply(302, b"", "/dashboard")
        else:
            self.reply(200, b"<p>Invalid user name or password</p>" + FORM)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.77.14", 80), H).serve_forever()' >"$dir/logs/formlogin.log" 2>&1 &
  echo $! > "$dir/formlogin.pid"

  python3 -W ignore -c '
import smtpd, asyncore, sys
smtpd.DebuggingServer(("127.0.77.26", 25), None)
asyncore.loop()' >"$dir/logs/smtpd.log" 2>&1 &
  echo $! > "$dir/smtpd.pid"

  # wait until every server accepts connections
  for target in 127.0.77.10:80 127.0.77.14:80 127.0.77.10:443 127.0.77.11:443 127.0.77.12:443 127.0.77.13:443 \
                127.0.77.20:21 127.0.77.21:22 $telnet 127.0.77.30:6379 127.0.77.26:25; do
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/${target%:*}/${target#*:}") 2>/dev/null; then break; fi
      sleep 0.1
    done
  done
  if [ -n "$telnet" ]; then echo "lab ready"; else echo "lab ready (no telnet)"; fi
}

stop() {
  local dir=$1
  [ -f "$dir/nginx/nginx.pid" ] && nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -s stop 2>/dev/null || true
  for f in sshd.pid redis.pid dnsmasq.pid smtpd.pid telnetd.pid formlogin.pid; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
  done
  # vsftpd in background mode writes no pid file: stop the one listening on the lab address
  local ftp_pid
  ftp_pid=$(ss -ltnpH 'src 127.0.77.20:21' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  [ -n "${ftp_pid:-}" ] && kill "$ftp_pid" 2>/dev/null || true
  if [ -f "$dir/created-user" ]; then userdel "$LAB_USER" 2>/dev/null || true; rm -f "$dir/created-user"; fi
  echo "lab stopped"
}

case "${1:-}" in
  start) start "${2:?usage: lab.sh start DIR}" ;;
  stop) stop "${2:?usage: lab.sh stop DIR}" ;;
  check) need ;;
  *) echo "usage: lab.sh start DIR | stop DIR | check" >&2; exit 2 ;;
esac
