#!/usr/bin/env bash
# A private Docker engine and the eg kernel image, for eg-docker's tests and benchmark.
#
#   plugins/eg_docker/ci/setup.sh              start (or reuse) dockerd, build (or reuse) the image
#   plugins/eg_docker/ci/setup.sh --swarm      the same, and make the engine a one-node swarm
#   plugins/eg_docker/ci/setup.sh --teardown   stop dockerd, unmount what it leaves, remove its dirs
#
# Idempotent. On stdout it prints only shell assignments (progress goes to stderr):
#   DOCKER_HOST=unix:///tmp/eg-docker/docker.sock
#   EG_DOCKER_IMAGE=eg/kernel-py:local
#   EG_DOCKER_R_IMAGE=eg/kernel-r:local     (the Python image plus R and IRkernel)
#   EG_DOCKER_SWARM=active|inactive|unavailable: <reason>
#
# Environment:
#   EG_DOCKER_RUN    the engine's run directory: data root, exec root, socket, log (/tmp/eg-docker)
#   EG_DOCKER_CACHE  kept across runs: the debootstrap rootfs tarball and the saved kernel images,
#                    keyed by a hash of their inputs (/var/cache/eg-docker)
#   EG_DOCKERD_ARGS  extra dockerd arguments (split on spaces), used when this script starts the
#                    engine; eg-k8s's setup runs its node's private engine with
#                    "--add-runtime clamp=<wrapper> --default-runtime=clamp" (empty)
#
# The engine runs as infra.md §2 says: overlay2, no iptables, no default bridge; kernels use host
# networking. No registry is reachable, so images come from a debootstrap rootfs and `docker build`
# (pip reaches PyPI with the host CA bundle copied into the build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
RUN="${EG_DOCKER_RUN:-/tmp/eg-docker}"
CACHE="${EG_DOCKER_CACHE:-/var/cache/eg-docker}"
SOCK="$RUN/docker.sock"
export DOCKER_HOST="unix://$SOCK"
IMAGE_REPO="eg/kernel-py"
IMAGE="$IMAGE_REPO:local"
R_IMAGE_REPO="eg/kernel-r"
R_IMAGE="$R_IMAGE_REPO:local"
SUITE=bookworm
MIRROR="${EG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE="python3,python3-venv,ca-certificates"

say() { echo "eg-docker setup: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
dk() { docker "$@"; }

docker_alive() { [ -S "$SOCK" ] && timeout 10 docker version >/dev/null 2>&1; }

# --- teardown ---------------------------------------------------------------------------------

teardown() {
    if [ -f "$RUN/dockerd.pid" ]; then
        pid="$(cat "$RUN/dockerd.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping dockerd (pid $pid)"
            # Containers first, so nothing holds mounts when the daemon exits.
            ids="$(timeout 20 docker ps -aq 2>/dev/null || true)"
            [ -n "$ids" ] && timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$pid" 2>/dev/null && { say "dockerd ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; sleep 1; }
        fi
    fi
    # infra.md §2: the exec root's netns/default (nsfs) and the data root's bind mount stay
    # mounted after dockerd stops; unmount everything under the run dir, deepest first.
    if [ -d "$RUN" ]; then
        awk -v run="$RUN" '$2 == run || index($2, run "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || say "cannot unmount $mnt"
        done
        rm -rf "$RUN"
    fi
    say "torn down"
}

# --- install ----------------------------------------------------------------------------------

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
        apt-get update -q >&2
        apt-get install -y -q "${missing[@]}" >&2
        exec 7>&-
    fi
    command -v docker >/dev/null || die "no docker client after installing docker.io"
}

# --- the engine -------------------------------------------------------------------------------

start_dockerd() {
    if docker_alive; then
        say "reusing dockerd at $DOCKER_HOST"
        return
    fi
    mkdir -p "$RUN/data" "$RUN/exec"
    say "starting dockerd (data root $RUN/data)"
    # setsid: the daemon must outlive this script and the test session that ran it.
    setsid dockerd \
        --data-root "$RUN/data" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
        -H "unix://$SOCK" --storage-driver=overlay2 \
        --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
        --userland-proxy=false ${EG_DOCKERD_ARGS:-} \
        >"$RUN/dockerd.log" 2>&1 </dev/null 9>&- &
    local pid=$!
    for _ in $(seq 1 150); do
        docker_alive && { say "dockerd is up (pid $pid)"; return; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 30 "$RUN/dockerd.log" >&2 || true
    die "dockerd did not answer on $SOCK within 30s (its log is above and in $RUN/dockerd.log)"
}

# --- the image --------------------------------------------------------------------------------

hash_of() { sha256sum | cut -c1-16; }

base_image() {
    # The debootstrap rootfs, kept as a tarball in the cache; imported as eg/debian-base:<hash>.
    local key tarball tag
    key="$(printf '%s %s %s minbase' "$SUITE" "$INCLUDE" "$MIRROR" | hash_of)"
    tarball="$CACHE/rootfs-$SUITE-$key.tar"
    tag="eg/debian-base:$key"
    if dk image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
    if [ ! -s "$tarball" ]; then
        local root="$CACHE/rootfs-$SUITE-$key.tmp"
        rm -rf "$root"; mkdir -p "$root"
        say "debootstrap $SUITE (about a minute, once per machine)"
        debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        tar -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        rm -rf "$root"
    fi
    say "importing the rootfs as $tag"
    dk import "$tarball" "$tag" >/dev/null
    echo "$tag"
}

cached_image() {
    # cached_image NAME KEY REPO BASE_FN [build.sh options]: REPO:KEY from the engine, else loaded
    # from $CACHE/NAME-KEY.tar, else built FROM the image BASE_FN prints and saved there.
    local name="$1" key="$2" repo="$3" base_fn="$4"; shift 4
    local tag="$repo:$key" saved="$CACHE/$name-$key.tar" base
    if dk image inspect "$tag" >/dev/null 2>&1; then return; fi
    if [ -s "$saved" ]; then
        say "loading the cached image $tag"
        dk load -i "$saved" >/dev/null
        return
    fi
    base="$($base_fn)"
    say "building $tag"
    bash "$HERE/../image/build.sh" "$@" --base "$base" --tag "$tag" -- -q --network host >&2 \
        || die "docker build of $tag failed"
    say "saving $tag to $saved"
    dk save -o "$saved.part" "$tag" && mv "$saved.part" "$saved"
    # Older saved images of other inputs are of no further use.
    find "$CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$key.tar" -delete
}

build_image() {
    PY_KEY="$( (cat "$HERE/../image/Dockerfile" "$HERE/../image/bootstrap-kernel.sh" "$REPO/kernelspecs/launcher/launch_ipykernel.py"
                echo "$SUITE $INCLUDE") | hash_of)"
    cached_image kernel-py "$PY_KEY" "$IMAGE_REPO" base_image
    dk tag "$IMAGE_REPO:$PY_KEY" "$IMAGE"
    say "kernel image $IMAGE = $IMAGE_REPO:$PY_KEY"
}

py_image() { echo "$IMAGE_REPO:$PY_KEY"; }

build_r_image() {
    # eg/kernel-r: the Python image plus Debian's R and IRkernel, keyed by the Python image's key
    # and Dockerfile.r (a few minutes once per machine: apt-get inside the build).
    local key
    key="$( (echo "$PY_KEY"; cat "$HERE/../image/Dockerfile.r") | hash_of)"
    cached_image kernel-r "$key" "$R_IMAGE_REPO" py_image --language r
    dk tag "$R_IMAGE_REPO:$key" "$R_IMAGE"
    say "R kernel image $R_IMAGE = $R_IMAGE_REPO:$key"
}

# --- swarm ------------------------------------------------------------------------------------

swarm_state() { dk info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

drop_swarm_networks() {
    # Kernels use host networking, so the routing mesh is not needed; its ingress network and
    # docker_gwbridge would put private-range addresses on this machine. Remove both.
    echo y | dk network rm ingress >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do
        dk network inspect docker_gwbridge >/dev/null 2>&1 || break
        dk network rm docker_gwbridge >/dev/null 2>&1 && break
        sleep 0.2
    done
}

init_swarm() {
    local state out
    state="$(swarm_state)"
    if [ "$state" = active ]; then echo "EG_DOCKER_SWARM=active"; return; fi
    if out="$(dk swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 2>&1)"; then
        say "swarm initialized"
        drop_swarm_networks
        echo "EG_DOCKER_SWARM=active"
    else
        say "swarm init failed: $out"
        echo "EG_DOCKER_SWARM=unavailable: $(echo "$out" | tr '\n' ' ')"
    fi
}

# --- main -------------------------------------------------------------------------------------

case "${1:-}" in
    --teardown) teardown; exit 0 ;;
    ""|--swarm) ;;
    *) die "usage: $0 [--swarm|--teardown]" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (dockerd, debootstrap)"
mkdir -p "$RUN" "$CACHE"
exec 9>"$RUN.lock"
flock 9
install_packages
start_dockerd
# The image cache is shared by every engine this script starts (eg-k8s's node has its own, and
# scripts/test.sh brings both up side by side): one builds, the other waits and loads.
exec 8>"$CACHE.lock"
flock 8
build_image
build_r_image
flock -u 8
echo "DOCKER_HOST=$DOCKER_HOST"
echo "EG_DOCKER_IMAGE=$IMAGE"
echo "EG_DOCKER_R_IMAGE=$R_IMAGE"
if [ "${1:-}" = --swarm ]; then init_swarm; else echo "EG_DOCKER_SWARM=$(swarm_state)"; fi
