#!/usr/bin/env bash
# Builds, without any registry, the images berth's tests and examples use:
#   berth/busybox:latest  Debian's static busybox with every applet linked, /bin/sh
#   berth/nginx:latest    Debian's nginx with its shared libraries, plus busybox
# Each is a rootfs made in a temp dir, packed with tar and loaded with `docker import`.
#
# Usage: examples/images/build.sh          build what is missing or out of date
#        examples/images/build.sh --check  exit 0 if both images exist, else 1 (fast)
#        examples/images/build.sh --force  rebuild both
#
# Idempotent: each image carries a label with a hash of its inputs and is rebuilt only
# when that hash changes. Installs nothing: a missing binary names the Debian package.
set -euo pipefail

BUSYBOX_IMAGE="berth/busybox:latest"
NGINX_IMAGE="berth/nginx:latest"
# Bump to force a rebuild everywhere when the recipe changes.
RECIPE_VERSION=1

die() { echo "build.sh: $*" >&2; exit 1; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

case "${1:-}" in
  --check)
    image_exists "$BUSYBOX_IMAGE" && image_exists "$NGINX_IMAGE" && exit 0
    exit 1 ;;
  --force) FORCE=1 ;;
  "") FORCE=0 ;;
  *) die "unknown argument: $1 (expected --check or --force)" ;;
esac

command -v docker >/dev/null || die "docker CLI not found (Debian package docker.io)"
docker info >/dev/null 2>&1 || die "docker is not reachable: is the docker daemon running? is DOCKER_HOST right?"

BUSYBOX=/bin/busybox
NGINX=/usr/sbin/nginx
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing: install the Debian package busybox-static"
# A dynamically linked busybox (package `busybox`) would need its libraries too.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked: install the Debian package busybox-static"
fi

# One build at a time: tests and scripts run this concurrently, and two imports of the
# same tag racing each other fail one of them.
LOCK="${TMPDIR:-/tmp}/berth-images-build.lock"
exec 9>"$LOCK"
flock 9

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

input_hash() { cat "$@" | sha256sum | cut -c1-16; }

# Build only when the image is missing or was built from other inputs.
needs_build() { # image hash
  [ "$FORCE" = 1 ] && return 0
  local current
  current="$(docker image inspect -f '{{ index .Config.Labels "berth.build-hash" }}' "$1" 2>/dev/null || true)"
  [ "$current" != "$2" ]
}

# Busybox, every applet, /bin/sh, users root and nobody, /tmp: into rootfs $1.
add_busybox() {
  local root="$1" applet
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,var/www}
  chmod 1777 "$root/tmp"
  cp "$BUSYBOX" "$root/bin/busybox"
  # `busybox --list-full` gives each applet's usual directory (bin/ls, usr/bin/wget).
  while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$BUSYBOX" --list-full)
  [ -e "$root/bin/sh" ] || ln -s /bin/busybox "$root/bin/sh"
}

write_users() { # root, with users root nobody www-data
  cat >"$1/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$1/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
nobody:x:65534:
EOF
  echo "hosts: files dns" >"$1/etc/nsswitch.conf"
}

import() { # root image hash cmd-json name
  local root="$1" image="$2" hash="$3" cmd="$4" name="$5"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$WORK/$name.tar" .
  docker import \
    --change "CMD $cmd" \
    --change "LABEL berth.image=$name" \
    --change "LABEL berth.build-hash=$hash" \
    "$WORK/$name.tar" "$image" >/dev/null
  echo "built $image ($(du -h "$WORK/$name.tar" | cut -f1))"
}

# --- berth/busybox ---------------------------------------------------------------
busybox_hash="$(input_hash "$BUSYBOX" "$0")-$RECIPE_VERSION"
if needs_build "$BUSYBOX_IMAGE" "$busybox_hash"; then
  root="$WORK/busybox"
  add_busybox "$root"
  write_users "$root"
  import "$root" "$BUSYBOX_IMAGE" "$busybox_hash" '["/bin/sh"]' busybox
else
  echo "$BUSYBOX_IMAGE is up to date"
fi

# --- berth/nginx -----------------------------------------------------------------
[ -x "$NGINX" ] || die "$NGINX is missing: install the Debian package nginx-light"
[ -f /etc/nginx/mime.types ] || die "/etc/nginx/mime.types is missing: install the Debian package nginx-light (or nginx-common)"
# Both read all their input: a reader that leaves early (awk's `exit`, `head`) can kill
# the writer with SIGPIPE, which pipefail turns into a silent exit of this script.
NSS_FILES="$(ldconfig -p | awk '/libnss_files.so.2 / && /x86-64|aarch64|AArch64/ && !found {print $NF; found = 1}')"
[ -n "$NSS_FILES" ] || NSS_FILES="$(find /lib /usr/lib -name libnss_files.so.2 -print -quit 2>/dev/null || true)"
[ -n "$NSS_FILES" ] || die "libnss_files.so.2 not found: install the Debian package libc6"
# Each library nginx links, by its full path, plus the dynamic loader (the absolute
# path ldd prints without "=>").
mapfile -t NGINX_LIBS < <(ldd "$NGINX" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
nginx_hash="$(input_hash "$NGINX" "$BUSYBOX" "${NGINX_LIBS[@]}" "$NSS_FILES" /etc/nginx/mime.types "$0")-$RECIPE_VERSION"
if needs_build "$NGINX_IMAGE" "$nginx_hash"; then
  root="$WORK/nginx"
  add_busybox "$root"
  write_users "$root"
  for lib in "${NGINX_LIBS[@]}" "$NSS_FILES"; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  mkdir -p "$root/usr/sbin" "$root/etc/nginx/conf.d" "$root/var/log/nginx" "$root/run" \
    "$root/var/lock" "$root/usr/share/nginx/html" \
    "$root"/var/lib/nginx/{body,fastcgi,proxy,scgi,uwsgi}
  cp "$NGINX" "$root/usr/sbin/nginx"
  cp /etc/nginx/mime.types "$root/etc/nginx/mime.types"
  # Logs to the container's stdout/stderr, where `docker logs` (and berth) read them.
  ln -sf /dev/stdout "$root/var/log/nginx/access.log"
  ln -sf /dev/stderr "$root/var/log/nginx/error.log"
  echo "berth nginx" >"$root/usr/share/nginx/html/index.html"
  # A default that serves a page on :80 and loads whatever is mounted in conf.d/;
  # tasks replace it with a bind mount of their own nginx.conf.
  cat >"$root/etc/nginx/nginx.conf" <<'EOF'
user www-data;
worker_processes 1;
error_log stderr;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log /dev/stdout;
    include /etc/nginx/conf.d/*.conf;
    server {
        listen 80 default_server;
        root /usr/share/nginx/html;
    }
}
EOF
  import "$root" "$NGINX_IMAGE" "$nginx_hash" '["/usr/sbin/nginx","-g","daemon off;"]' nginx
else
  echo "$NGINX_IMAGE is up to date"
fi
