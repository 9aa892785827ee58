#!/usr/bin/env bash
# A real Kubernetes control plane and node on loopback, for eg-k8s's tests and benchmark.
#
#   plugins/eg_k8s/ci/setup.sh              build (or reuse) the binaries, start (or reuse) the cluster
#   plugins/eg_k8s/ci/setup.sh --build      only build (or reuse) the binaries
#   plugins/eg_k8s/ci/setup.sh --teardown   stop every daemon this script started, remove its run dir
#   EG_K8S_INSTANCE=2 plugins/eg_k8s/ci/setup.sh [--teardown]   the same for a second cluster beside the
#                                           first (eg-k8s's tests of several clusters; see below)
#
# Idempotent. On stdout it prints only shell assignments (progress goes to stderr):
#   KUBECONFIG=/tmp/eg-k8s/kubeconfig
#   EG_K8S_IMAGE=eg/kernel-py:local       (eg/kernel-r:local, for R_kubernetes, is in the node's engine too)
#   EG_K8S_SPARK_IMAGE=eg/kernel-spark:local   (JRE + pyspark + eg's launcher: ../spark_image)
#   EG_K8S_TOREE_IMAGE=eg/kernel-toree:local   (the Spark image + Spark 3.5 + Apache Toree: ../spark_image)
#   EG_K8S_NODE=eg-k8s-node
#   EG_K8S_APISERVER_PORT=16443
#   EG_K8S_CA=/tmp/eg-k8s/certs/apiserver.crt      (the API server's certificate, to verify it)
#   DOCKER_HOST=unix:///tmp/eg-k8s/docker/docker.sock   (the node's engine)
#   EG_K8S_BIN=/var/cache/eg-k8s/<source version>/bin
#   EG_K8S_POD_CIDR=10.244.0.0/24       (the pod network)
#   EG_K8S_HOST_IP=10.244.0.1           (the host on the pod network: pods reach it there)
#   EG_K8S_SERVICE_CIDR=10.96.0.0/24    (ClusterIPs; the `kubernetes` Service is 10.96.0.1)
#
# Environment:
#   EG_K8S_RUN    run directory: etcd data, certificates, kubelet root, the node's docker engine, logs
#                 (/tmp/eg-k8s)
#   EG_K8S_CACHE  kept across runs: kube-apiserver, kube-scheduler, kube-controller-manager, kubelet
#                 and kube-proxy built from Debian's `kubernetes` source package, under
#                 <source version>/bin (/var/cache/eg-k8s); a binary missing there is built alone
#   EG_K8S_POD_CIDR, EG_K8S_SERVICE_CIDR, EG_K8S_POD_BRIDGE   the networks and the bridge's name
#                 (10.244.0.0/24, 10.96.0.0/24, eg-k8s0)
#   EG_K8S_INSTANCE  1 (the default) or 2: which of two clusters this machine can run side by side.
#                 Instance 2 has its own run dir (/tmp/eg-k8s2), ports (API server 16444, etcd
#                 23791, kubelet 20350...), node (eg-k8s-node2) and its engine, kubelet root, pod
#                 bridge eg-k8s1 on 10.245.0.0/24, Service CIDR 10.97.0.0/24 and kubeconfig context
#                 eg2; binaries and images come from the same caches (it builds nothing, and loads no
#                 Spark or Toree image: EG_K8S_SPARK_IMAGE and EG_K8S_TOREE_IMAGE are not printed).
#                 It runs WITHOUT kube-proxy: two kube-proxies in iptables mode would each rewrite the
#                 KUBE-* chains the other fills, so ClusterIP Services (the `kubernetes` Service
#                 included) do not work in pods there; kernels are dialled on their pod IPs, which
#                 works. Its kubelet makes no KUBE-* chains (--make-iptables-util-chains=false), so its
#                 teardown removes only its own chain (EG-K8S2-INPUT) and no sysctl is touched. Its
#                 kubelet runs in a mount namespace of its own whose /var/log/pods, /var/log/containers
#                 and /var/lib/kubelet/device-plugins are under its run dir (those paths are fixed in
#                 kubelet 1.20, and each kubelet removes the log directories of pods it does not know),
#                 its kubelet root a shared mount, so the volumes it mounts reach its engine; its CRI
#                 socket is under its run dir too. Teardown of one instance leaves the other alone.
#
# How and why (infra.md §3): nothing ships a kube-apiserver binary that can be installed here, but
# Debian's `kubernetes` source package holds the whole upstream tree with vendor/, which builds
# offline with Debian's Go through the upstream Makefile in GOPATH mode (about 11-12 minutes on two
# cores, once per machine and source version). The node is kubelet 1.20 with its built-in dockershim,
# talking to a private dockerd (started by eg-docker's setup script with its own run dir) whose
# default runtime is a runc wrapper clamping negative oom_score_adj to 0: this sandbox refuses
# negative values, and kubelet gives every pod sandbox -998.
#
# The kubelet talks to the API server at the rates Kubernetes 1.27 made its defaults (50 requests
# and 50 events per second, bursts of 100) instead of 1.20's 5/5: with 1.20's, the node reports
# pod statuses and events seconds late once it runs a few pods.
#
# What runs: etcd, kube-apiserver, kube-scheduler, kube-controller-manager, the kubelet, kube-proxy
# (iptables mode), and the node's dockerd. Pods get addresses on a CNI bridge network
# (pod_network.sh: Debian's containernetworking-plugins, the bridge carrying the host's address
# EG_K8S_HOST_IP, so the host dials pod IPs directly); ClusterIP Services work from the host and
# from pods; hostNetwork pods still work. The daemons listen on 127.0.0.1, except the API server:
# it listens on every address, advertises the bridge's (the `kubernetes` Service's endpoint) and
# answers only on loopback and the bridge. The node's name resolves to 127.0.0.1 (/etc/hosts), so
# the API server reaches the kubelet (pod logs) through loopback only. A cluster started by an
# earlier version of this script gets the new flags: the daemons whose command line changed are
# restarted once (running pods keep running).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
INSTANCE="${EG_K8S_INSTANCE:-1}"
case "$INSTANCE" in
    1) ;;
    2) export EG_K8S_POD_CIDR="${EG_K8S_POD_CIDR:-10.245.0.0/24}" EG_K8S_SERVICE_CIDR="${EG_K8S_SERVICE_CIDR:-10.97.0.0/24}" \
              EG_K8S_POD_BRIDGE="${EG_K8S_POD_BRIDGE:-eg-k8s1}" EG_K8S_NODE="${EG_K8S_NODE:-eg-k8s-node2}" ;;
    *) echo "eg-k8s setup: ERROR: EG_K8S_INSTANCE must be 1 or 2, not $INSTANCE" >&2; exit 1 ;;
esac
RUN="${EG_K8S_RUN:-/tmp/eg-k8s$([ "$INSTANCE" = 1 ] || echo "$INSTANCE")}"
CACHE="${EG_K8S_CACHE:-/var/cache/eg-k8s}"
BINARIES="kube-apiserver kubelet kube-scheduler kube-controller-manager kube-proxy"

say() { echo "eg-k8s setup: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
ETCD_PORT=23790; APISERVER_PORT=16443; SCHEDULER_PORT=20259; CM_PORT=20257; KUBELET_PORT=20250; KUBELET_HEALTHZ=20248
PROXY_HEALTHZ=20256; PROXY_METRICS=20249; ETCD_PEER_PORT=23800; ETCD_METRICS_PORT=23810; CONTEXT=eg
if [ "$INSTANCE" = 2 ]; then
    ETCD_PORT=23791; APISERVER_PORT=16444; SCHEDULER_PORT=20359; CM_PORT=20357; KUBELET_PORT=20350; KUBELET_HEALTHZ=20348
    ETCD_PEER_PORT=23801; ETCD_METRICS_PORT=23811; CONTEXT=eg2
fi
# shellcheck source=pod_network.sh
. "$HERE/pod_network.sh"

# --- packages ---------------------------------------------------------------------------------

install_packages() {
    local missing=()
    command -v go >/dev/null || missing+=(golang-go)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v jq >/dev/null || missing+=(jq)
    command -v gcc >/dev/null || missing+=(gcc libc6-dev)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    missing+=($(pod_network_packages))
    # a registry the image-pull tests run on 127.0.0.1 (it must not start as a system service either)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    # kubectl: use the one on the machine; Debian's kubernetes-client conflicts with it (infra.md §3).
    command -v kubectl >/dev/null || die "kubectl is required (it is preinstalled here; do not install kubernetes-client)"
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # etcd-server (and docker-registry) must not start a system service: the cluster runs its own.
        exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
        local guard=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
        fi
        apt-get update -q >&2
        apt-get install -y -q "${missing[@]}" >&2
        [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
        exec 7>&-
    fi
}

# --- build ------------------------------------------------------------------------------------

APT="$CACHE/apt"
APTO=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$APT/sources"
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache")

source_version() {
    # The version of Debian's kubernetes source package, from isolated deb-src lists (the system's
    # apt configuration is left alone). Offline, the newest cached build is used.
    mkdir -p "$APT/lists/partial" "$APT/sources" "$APT/cache/archives/partial" "$APT/src"
    cat > "$APT/sources/src.sources" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    local v=""
    if apt-get "${APTO[@]}" update -q >/dev/null 2>&1; then
        v="$(apt-cache "${APTO[@]}" showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n1)"
    fi
    if [ -z "$v" ]; then
        v="$(find "$CACHE" -mindepth 3 -maxdepth 3 -path '*/bin/kubelet' 2>/dev/null | awk -F/ '{print $(NF-2)}' | sort -V | tail -n1)"
        [ -n "$v" ] || die "cannot read the version of Debian's kubernetes source package, and nothing is cached"
        say "offline: using the cached build $v"
    fi
    echo "$v"
}

missing_binaries() {
    # The binaries $1/bin lacks (all of them on a fresh machine; kube-proxy alone on a machine
    # whose cache predates the pod network).
    local b
    for b in $BINARIES; do [ -x "$1/bin/$b" ] || echo "$b"; done
}

build_binaries() {
    # Builds what $CACHE/<version>/bin lacks, in one `make` call; the 2 GB build tree is removed
    # afterwards (binaries: ~400 MB). Binaries already cached are kept.
    local version="$1" dest="$CACHE/$1" missing
    missing="$(missing_binaries "$dest" | xargs)"
    [ -n "$missing" ] || return 0
    local work="$CACHE/build-$version"
    rm -rf "$work"; mkdir -p "$work/home"
    say "fetching Debian's kubernetes $version source"
    (cd "$APT/src" && apt-get "${APTO[@]}" source --download-only "kubernetes=$version" >&2)
    local orig
    orig="$(ls "$APT/src"/kubernetes_*.orig.tar.gz | sort -V | tail -n1)"
    tar -C "$work" -xzf "$orig"
    local tree
    tree="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes*' | head -n1)"
    [ -f "$tree/Makefile" ] || die "no upstream tree in $orig"
    mkdir -p "$tree/.go/src/k8s.io"
    ln -s ../../.. "$tree/.go/src/k8s.io/kubernetes"
    local t0=$SECONDS what b
    what="$(for b in $missing; do printf 'cmd/%s ' "$b"; done)"
    say "building $missing from $version (11-12 minutes on 2 cores for all, once per machine; log: $work/build.log)"
    # GOPATH mode through the upstream Makefile, as Debian's rules do; a plain
    # `go build -mod=vendor` fails (infra.md §3).
    (cd "$tree" && env GOPATH="$tree/.go" CGO_ENABLED=0 GOPROXY=off GOFLAGS= GO111MODULE= \
        HOME="$work/home" GOCACHE="$work/home/gocache" \
        make WHAT="${what% }" >"$work/build.log" 2>&1) \
        || { tail -n 30 "$work/build.log" >&2; die "build failed (log: $work/build.log)"; }
    mkdir -p "$dest/bin"
    for b in $missing; do
        cp "$tree/_output/bin/$b" "$dest/bin/$b.part" && mv "$dest/bin/$b.part" "$dest/bin/$b"
    done
    cp "$tree/build/pause/linux/pause.c" "$dest/pause.c"
    cp "$work/build.log" "$dest/build-$(echo "$missing" | tr ' ' '+').log"
    rm -rf "$work"
    say "built $missing in $((SECONDS - t0)) s into $dest/bin"
}

# --- the node's Docker engine -------------------------------------------------------------------

NODE="${EG_K8S_NODE:-eg-k8s-node}"
DOCKER_RUN="$RUN/docker"

write_runc_clamp() {
    # infra.md §3: this sandbox refuses negative oom_score_adj even as root, and kubelet gives every
    # pod sandbox -998 ("can't get final child's PID from pipe: EOF"); clamp it to 0, then run runc.
    cat > "$RUN/runc-clamp.part" <<'CLAMP'
#!/bin/sh
prev=""; bundle=""
for a in "$@"; do case "$prev" in --bundle|-b) bundle="$a";; esac; prev="$a"; done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  /usr/bin/jq -c '(.process.oomScoreAdj) |= (if . != null and . < 0 then 0 else . end)' "$bundle/config.json" > "$bundle/config.json.clamp" \
    && mv "$bundle/config.json.clamp" "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
CLAMP
    chmod 755 "$RUN/runc-clamp.part"
    mv "$RUN/runc-clamp.part" "$RUN/runc-clamp"
}

start_docker() {
    # A private engine for the node, started by eg-docker's own setup (its run dir, its image
    # cache: both kernel images, Python and R, loaded from there), with the clamping runtime as default. The engine eg-docker's tests use is not touched.
    local out
    out="$(EG_DOCKER_RUN="$DOCKER_RUN" EG_DOCKERD_ARGS="--add-runtime clamp=$RUN/runc-clamp --default-runtime=clamp" \
        bash "$REPO/plugins/eg_docker/ci/setup.sh")" || die "eg-docker's setup could not start the node's engine"
    eval "$(echo "$out" | grep -E '^(DOCKER_HOST|EG_DOCKER_IMAGE)=')"
    export DOCKER_HOST
    KERNEL_IMAGE="$EG_DOCKER_IMAGE"
    [ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" = clamp ] \
        || die "the engine at $DOCKER_HOST does not run the clamp runtime by default (stop it: $0 --teardown)"
}

pause_image() {
    # The pod sandbox image, built from the source's pause.c (no registry here).
    local tag=eg/pause:local
    docker image inspect "$tag" >/dev/null 2>&1 && return
    local dir; dir="$(mktemp -d)"
    mkdir -p "$dir/rootfs"
    gcc -Os -static -DVERSION=v3.4.1-eg -o "$dir/rootfs/pause" "$CACHE/$VERSION/pause.c" && strip "$dir/rootfs/pause"
    tar -C "$dir/rootfs" -c . | docker import -c 'ENTRYPOINT ["/pause"]' - "$tag" >/dev/null
    rm -rf "$dir"
    say "built the pause image $tag"
}

cached_image() {
    # cached_image NAME BASE FLAG INPUT...: eg/kernel-NAME:local, built by ../spark_image/build.sh
    # FLAG (none or --toree) FROM BASE once per machine and inputs (the INPUT files and the base
    # image's id); saved under $CACHE so a restarted engine loads it instead of building again.
    # Prints the image's name.
    local name=$1 base=$2 flag=$3 key saved tag
    shift 3
    key="$( (cat "$@"; docker image inspect --format '{{.Id}}' "$base") | sha256sum | cut -c1-16)"
    tag="eg/kernel-$name:$key"
    saved="$CACHE/kernel-$name-$key.tar"
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        if [ -s "$saved" ]; then
            say "loading the cached $name image $tag"
            docker load -i "$saved" >/dev/null
        else
            say "building $tag (a few minutes once per machine and inputs)"
            bash "$HERE/../spark_image/build.sh" ${flag:+"$flag"} "$tag" "$base" -- -q --network host >&2 \
                || die "docker build of the $name image failed"
            docker save -o "$saved.part" "$tag" && mv "$saved.part" "$saved"
            find "$CACHE" -maxdepth 1 -name "kernel-$name-*.tar" ! -name "kernel-$name-$key.tar" -delete
        fi
    fi
    docker tag "$tag" "eg/kernel-$name:local"
    echo "eg/kernel-$name:local"
}

spark_image() {
    # eg's Spark kernel image (JRE + pyspark 4 + eg's launcher and its Spark extension), FROM the
    # kernel image, and the Toree image (Spark 3.5 + Apache Toree), FROM the Spark image.
    local dir="$HERE/../spark_image"
    SPARK_IMAGE="$(cached_image spark "$KERNEL_IMAGE" "" "$dir/Dockerfile" "$dir/spark-entrypoint.sh" "$dir/build.sh" \
        "$REPO/kernelspecs/launcher/launch_ipykernel.py" "$REPO/kernelspecs/launcher/eg_spark_context.py" \
        <(grep -E '^(pyspark|py4j)==' "$REPO/constraints.txt"))"
    TOREE_IMAGE="$(cached_image toree "$SPARK_IMAGE" --toree "$dir/Dockerfile.toree" "$dir/toree-requirements.txt" "$dir/spark-entrypoint.sh" "$dir/build.sh")"
}

# --- the control plane and the node ---------------------------------------------------------------

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop() {
    # stop NAME: TERM, then KILL after 10 s, the daemon started as NAME.
    local pid
    alive "$1" || return 0
    pid="$(cat "$RUN/$1.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    say "stopped $1"
}

daemon() {
    # daemon NAME CMD...: start CMD in its own session (it outlives this script), log and pid in $RUN.
    # A running NAME is kept when its command line is CMD, else restarted (a cluster started by an
    # earlier version of this script gets the new flags once).
    local name="$1"; shift
    if alive "$name"; then
        cmp -s "/proc/$(cat "$RUN/$name.pid")/cmdline" <(printf '%s\0' "$@") && return
        say "restarting $name: its command line changed"
        stop "$name"
    fi
    # shellcheck disable=SC2086  # a wrapper is words without spaces
    setsid ${WRAPPER[$name]:-} "$@" >"$RUN/$name.log" 2>&1 </dev/null 9>&- &
    echo $! > "$RUN/$name.pid"
    say "started $name (pid $!)"
}

wait_for() {
    # wait_for WHAT SECONDS CMD...: until CMD succeeds, or fail with the daemon logs.
    local what="$1" seconds="$2"; shift 2
    local end=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then
            for log in "$RUN"/*.log; do echo "== $log" >&2; tail -n 15 "$log" >&2; done
            die "$what not ready within ${seconds}s"
        fi
        sleep 0.3
    done
}

credentials() {
    [ -s "$RUN/sa.key" ] || { openssl genrsa -out "$RUN/sa.key" 2048 2>/dev/null; openssl rsa -in "$RUN/sa.key" -pubout -out "$RUN/sa.pub" 2>/dev/null; }
    if [ ! -s "$RUN/tokens.csv" ]; then
        echo "$(openssl rand -hex 16),admin,admin,system:masters" > "$RUN/tokens.csv"
        chmod 600 "$RUN/tokens.csv"
    fi
    # The node's name resolves to loopback, so the API server reaches the kubelet (pod logs)
    # there (--kubelet-preferred-address-types=Hostname) and never dials the node's own address.
    grep -qE "^127\.0\.0\.1[[:space:]]+$NODE\$" /etc/hosts || echo "127.0.0.1 $NODE" >> /etc/hosts
}

write_kubeconfig() {
    # The admin kubeconfig, trusting the API server's own (self-signed) certificate.
    local token kc="$RUN/kubeconfig"
    token="$(cut -d, -f1 "$RUN/tokens.csv")"
    rm -f "$kc.part"
    kubectl config --kubeconfig="$kc.part" set-cluster "$CONTEXT" --server="https://127.0.0.1:$APISERVER_PORT" \
        --certificate-authority="$RUN/certs/apiserver.crt" --embed-certs=true >/dev/null
    kubectl config --kubeconfig="$kc.part" set-credentials admin --token="$token" >/dev/null
    kubectl config --kubeconfig="$kc.part" set-context "$CONTEXT" --cluster="$CONTEXT" --user=admin >/dev/null
    kubectl config --kubeconfig="$kc.part" use-context "$CONTEXT" >/dev/null
    chmod 600 "$kc.part"; mv "$kc.part" "$kc"
}

apiserver_ready() {
    [ -s "$RUN/certs/apiserver.crt" ] && curl -sf --cacert "$RUN/certs/apiserver.crt" \
        -H "Authorization: Bearer $(cut -d, -f1 "$RUN/tokens.csv")" "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null
}

start_cluster() {
    local B="$CACHE/$VERSION/bin" kc="$RUN/kubeconfig"
    mkdir -p "$RUN/etcd" "$RUN/certs" "$RUN/kubelet" "$RUN/kubelet-pki" "$RUN/dockershim"
    daemon etcd etcd --name eg --data-dir "$RUN/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "eg=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT"
    apiserver_certificate
    daemon kube-apiserver "$B/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=0.0.0.0 --advertise-address="$POD_GATEWAY" --secure-port="$APISERVER_PORT" --insecure-port=0 \
        --cert-dir="$RUN/certs" --service-cluster-ip-range="$SERVICE_CIDR" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$RUN/sa.pub" --service-account-signing-key-file="$RUN/sa.key" \
        --token-auth-file="$RUN/tokens.csv" --authorization-mode=Node,RBAC --allow-privileged=true \
        --kubelet-preferred-address-types=Hostname
    wait_for "kube-apiserver" 120 apiserver_ready
    write_kubeconfig
    daemon kube-scheduler "$B/kube-scheduler" --kubeconfig="$kc" --authentication-kubeconfig="$kc" \
        --authorization-kubeconfig="$kc" --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --port=0 --leader-elect=false
    daemon kube-controller-manager "$B/kube-controller-manager" --kubeconfig="$kc" --authentication-kubeconfig="$kc" \
        --authorization-kubeconfig="$kc" --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 --leader-elect=false \
        --service-account-private-key-file="$RUN/sa.key" --root-ca-file="$RUN/certs/apiserver.crt" --controllers='*'
    daemon kubelet "$B/kubelet" --kubeconfig="$kc" --hostname-override="$NODE" --root-dir="$RUN/kubelet" \
        --cert-dir="$RUN/kubelet-pki" --container-runtime=docker --docker-endpoint="$DOCKER_HOST" \
        --experimental-dockershim-root-directory="$RUN/dockershim" --pod-infra-container-image=eg/pause:local \
        --cgroup-driver=cgroupfs --fail-swap-on=false --address=127.0.0.1 --port="$KUBELET_PORT" --read-only-port=0 \
        --healthz-bind-address=127.0.0.1 --healthz-port="$KUBELET_HEALTHZ" --cgroups-per-qos=false \
        --enforce-node-allocatable="" --eviction-hard="" --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
        --network-plugin=cni --cni-bin-dir="$CNI_BIN" --cni-conf-dir="$CNI_CONF" --cni-cache-dir="$RUN/cni/cache" \
        --kube-api-qps=50 --kube-api-burst=100 --event-qps=50 --event-burst=100 \
        ${KUBELET_EXTRA[@]+"${KUBELET_EXTRA[@]}"}
    if [ "$INSTANCE" = 1 ]; then
        start_kube_proxy
    fi
    wait_for "node $NODE" 180 kubectl --kubeconfig="$kc" wait --for=condition=Ready "node/$NODE" --timeout=5s
    wait_for "the default service account" 60 kubectl --kubeconfig="$kc" -n default get serviceaccount default
}

start_kube_proxy() {
    local B="$CACHE/$VERSION/bin" kc="$RUN/kubeconfig"
    daemon kube-proxy "$B/kube-proxy" --kubeconfig="$kc" --hostname-override="$NODE" --proxy-mode=iptables \
        --cluster-cidr="$POD_CIDR" --healthz-bind-address="127.0.0.1:$PROXY_HEALTHZ" \
        --metrics-bind-address="127.0.0.1:$PROXY_METRICS" --oom-score-adj=0 --conntrack-max-per-core=0 \
        --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0
    wait_for "kube-proxy" 60 curl -sf "http://127.0.0.1:$PROXY_HEALTHZ/healthz"
}

KUBELET_EXTRA=()
declare -A WRAPPER=()  # daemon name -> the command that starts it (its command line stays the daemon's own)

second_kubelet() {
    # Instance 2's kubelet (see the header): its own CRI socket and no KUBE-* chains; started by a
    # wrapper that gives it a mount namespace with this instance's /var/log/pods,
    # /var/log/containers and /var/lib/kubelet/device-plugins. Its root is made a shared mount
    # here first, so what the kubelet mounts under it (Secret volumes) reaches the node's engine.
    KUBELET_EXTRA=(--container-runtime-endpoint="unix://$RUN/dockershim.sock" --image-service-endpoint="unix://$RUN/dockershim.sock"
                   --make-iptables-util-chains=false)
    mkdir -p "$RUN/kubelet" "$RUN/log/pods" "$RUN/log/containers" "$RUN/device-plugins" \
        /var/log/pods /var/log/containers /var/lib/kubelet/device-plugins
    mountpoint -q "$RUN/kubelet" || mount --bind "$RUN/kubelet" "$RUN/kubelet"
    mount --make-shared "$RUN/kubelet"
    cat > "$RUN/kubelet-ns.part" <<'WRAP'
#!/bin/sh
# kubelet-ns RUN KUBELET ARGS...: the kubelet in a mount namespace of its own (eg-k8s setup.sh, instance 2)
run="$1"; shift
exec unshare --mount --propagation unchanged /bin/sh -c '
  mount --bind "$0/log/pods" /var/log/pods && mount --bind "$0/log/containers" /var/log/containers &&
  mount --bind "$0/device-plugins" /var/lib/kubelet/device-plugins && exec "$@"' "$run" "$@"
WRAP
    chmod 755 "$RUN/kubelet-ns.part"; mv "$RUN/kubelet-ns.part" "$RUN/kubelet-ns"
    WRAPPER[kubelet]="$RUN/kubelet-ns $RUN"
}

# --- teardown ---------------------------------------------------------------------------------

teardown() {
    local name
    for name in kube-proxy kubelet kube-controller-manager kube-scheduler kube-apiserver etcd; do stop "$name"; done
    [ -d "$DOCKER_RUN" ] && EG_DOCKER_RUN="$DOCKER_RUN" bash "$REPO/plugins/eg_docker/ci/setup.sh" --teardown
    pod_network_down
    if [ -d "$RUN" ]; then
        awk -v run="$RUN" '$2 == run || index($2, run "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || say "cannot unmount $mnt"
        done
        rm -rf "$RUN"
    fi
    say "torn down"
}

# --- main -------------------------------------------------------------------------------------

MODE="${1:-}"
case "$MODE" in
    ""|--build|--teardown) ;;
    *) die "usage: $0 [--build|--teardown]" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (dockerd, kubelet)"
if [ "$MODE" = --teardown ]; then teardown; exit 0; fi
mkdir -p "$CACHE" "$RUN"
T0=$SECONDS
exec 9>"$CACHE.lock"
flock 9
install_packages
VERSION="$(source_version)"
build_binaries "$VERSION"
BIN="$CACHE/$VERSION/bin"
if [ "$MODE" = --build ]; then echo "EG_K8S_BIN=$BIN"; exit 0; fi
exec 9>"$RUN.lock"
flock 9
write_runc_clamp
start_docker
pause_image
if [ "$INSTANCE" = 1 ]; then spark_image; else second_kubelet; fi
credentials
pod_network_up
start_cluster
say "cluster ready in $((SECONDS - T0)) s"
echo "KUBECONFIG=$RUN/kubeconfig"
echo "DOCKER_HOST=$DOCKER_HOST"
echo "EG_K8S_IMAGE=$KERNEL_IMAGE"
[ "$INSTANCE" != 1 ] || echo "EG_K8S_SPARK_IMAGE=$SPARK_IMAGE"
[ "$INSTANCE" != 1 ] || echo "EG_K8S_TOREE_IMAGE=$TOREE_IMAGE"
echo "EG_K8S_NODE=$NODE"
echo "EG_K8S_APISERVER_PORT=$APISERVER_PORT"
echo "EG_K8S_CA=$RUN/certs/apiserver.crt"
echo "EG_K8S_BIN=$BIN"
echo "EG_K8S_POD_CIDR=$POD_CIDR"
echo "EG_K8S_HOST_IP=$POD_GATEWAY"
echo "EG_K8S_SERVICE_CIDR=$SERVICE_CIDR"
