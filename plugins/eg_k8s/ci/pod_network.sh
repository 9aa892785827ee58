# The test cluster's pod network, sourced by setup.sh (which sets RUN and the helpers say/die).
#
# Pods that do not use hostNetwork get an address in POD_CIDR from Debian's
# containernetworking-plugins (bridge + host-local IPAM; the kubelet calls them through its CNI
# network plugin, the loopback plugin for each pod's lo). The bridge is made here, before any pod,
# with the gateway address POD_GATEWAY: the host reaches pod IPs directly through it, and pods reach
# the host there (a gateway's response listener, the API server behind the `kubernetes` Service).
# kube-proxy (iptables mode) makes ClusterIP Services work from the host and from pods.
#
# What this changes on the machine, and teardown undoes: the bridge, the CNI config and IPAM state
# (under RUN), the iptables chains KUBE-* (kubelet, kube-proxy) and EG-K8S-INPUT (the API server's
# port answers only on loopback and the bridge), and three sysctls whose values before are kept in
# RUN/sysctl.orig: net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables (pod to Service to
# pod on one bridge), net.ipv4.conf.all.route_localnet (kube-proxy sets it).
# A second instance (EG_K8S_INSTANCE=2, no kube-proxy) touches no sysctl and no KUBE-* chain: its
# guard chain is EG-K8S2-INPUT, the only chain its teardown removes.

POD_CIDR="${EG_K8S_POD_CIDR:-10.244.0.0/24}"
POD_GATEWAY="${POD_CIDR%.*}.1"
POD_BRIDGE="${EG_K8S_POD_BRIDGE:-eg-k8s0}"
SERVICE_CIDR="${EG_K8S_SERVICE_CIDR:-10.96.0.0/24}"
SERVICE_IP="${SERVICE_CIDR%.*}.1"
CNI_BIN=/usr/lib/cni
CNI_CONF="$RUN/cni/net.d"
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet"
GUARD_CHAIN=EG-K8S-INPUT
OWN_CHAINS='KUBE-|EG-K8S-'  # the iptables chains teardown removes
if [ "${INSTANCE:-1}" != 1 ]; then
    SYSCTLS="" GUARD_CHAIN="EG-K8S$INSTANCE-INPUT" OWN_CHAINS="EG-K8S$INSTANCE-"
fi

pod_network_packages() {
    # The names of the Debian packages the pod network needs and the machine lacks.
    [ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/loopback" ] || echo containernetworking-plugins
    command -v iptables-restore >/dev/null || echo iptables
    command -v conntrack >/dev/null || echo conntrack  # kube-proxy clears stale UDP entries with it
}

pod_network_up() {
    # Idempotent: the sysctls, the bridge with its gateway address, the CNI config, the API port's guard.
    local name
    if [ -n "$SYSCTLS" ]; then
        if [ ! -s "$RUN/sysctl.orig" ]; then
            for name in $SYSCTLS; do echo "$name=$(sysctl -n "$name")"; done > "$RUN/sysctl.orig.part"
            mv "$RUN/sysctl.orig.part" "$RUN/sysctl.orig"
        fi
        sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 \
            || die "cannot set net.ipv4.ip_forward and net.bridge.bridge-nf-call-iptables"
    fi
    ip link show "$POD_BRIDGE" >/dev/null 2>&1 || ip link add "$POD_BRIDGE" type bridge
    ip -4 addr show dev "$POD_BRIDGE" | grep -q "inet $POD_GATEWAY/" || ip addr add "$POD_GATEWAY/${POD_CIDR#*/}" dev "$POD_BRIDGE"
    ip link set "$POD_BRIDGE" up
    mkdir -p "$CNI_CONF" "$RUN/cni/ipam"
    cat > "$CNI_CONF/10-eg-k8s.conflist.part" <<CONF
{
  "cniVersion": "0.4.0",
  "name": "eg-k8s",
  "plugins": [
    {
      "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$RUN/cni/ipam", "routes": [{"dst": "0.0.0.0/0"}],
               "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]]}
    }
  ]
}
CONF
    mv "$CNI_CONF/10-eg-k8s.conflist.part" "$CNI_CONF/10-eg-k8s.conflist"
    guard_apiserver_port
}

guard_apiserver_port() {
    # The API server listens on every address (pods reach it on the bridge); it answers only
    # on loopback and the bridge.
    iptables -w -N "$GUARD_CHAIN" 2>/dev/null || iptables -w -F "$GUARD_CHAIN"
    iptables -w -A "$GUARD_CHAIN" -i lo -j RETURN
    iptables -w -A "$GUARD_CHAIN" -i "$POD_BRIDGE" -j RETURN
    iptables -w -A "$GUARD_CHAIN" -p tcp --dport "$APISERVER_PORT" -j REJECT
    iptables -w -C INPUT -j "$GUARD_CHAIN" 2>/dev/null || iptables -w -I INPUT -j "$GUARD_CHAIN"
}

apiserver_certificate() {
    # The API server's serving certificate and its CA in one file, as kube-apiserver makes for
    # itself, but valid for loopback (where clients dial it) as well as for the `kubernetes`
    # Service's IP and names (pods). An existing one is kept: running clients trust it.
    local dir="$RUN/certs"
    [ -s "$dir/apiserver.crt" ] && [ -s "$dir/apiserver.key" ] && return
    local tmp; tmp="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=eg-k8s-ca@$(date +%s)" \
        -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,digitalSignature" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$tmp/apiserver.key" -out "$tmp/apiserver.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "authorityKeyIdentifier=keyid" \
        "subjectAltName=IP:127.0.0.1,IP:$POD_GATEWAY,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
        > "$tmp/ext"
    openssl x509 -req -in "$tmp/apiserver.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -days 3650 \
        -extfile "$tmp/ext" -out "$tmp/apiserver.crt" 2>/dev/null
    mkdir -p "$dir"
    install -m 600 "$tmp/apiserver.key" "$dir/apiserver.key"
    cat "$tmp/apiserver.crt" "$tmp/ca.crt" > "$dir/apiserver.crt.part" && mv "$dir/apiserver.crt.part" "$dir/apiserver.crt"
    rm -rf "$tmp"
}

remove_iptables_chains() {
    # Every chain OWN_CHAINS matches (KUBE-* and EG-K8S-*; instance 2: EG-K8S2-*), in iptables and
    # ip6tables, every table, and the rules that jump to them.
    local tool table rule chain
    for tool in iptables ip6tables; do
        command -v "$tool-save" >/dev/null || continue
        for table in filter nat mangle; do
            "$tool-save" -t "$table" 2>/dev/null | grep -E "^-A .* -j ($OWN_CHAINS)" | grep -vE "^-A ($OWN_CHAINS)" \
                | while read -r rule; do eval "$tool -w -t $table -D ${rule#-A }" || true; done || true
            for chain in $("$tool-save" -t "$table" 2>/dev/null | awk -v own="^:($OWN_CHAINS)" '$0 ~ own {print substr($1, 2)}'); do
                "$tool" -w -t "$table" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$tool-save" -t "$table" 2>/dev/null | awk -v own="^:($OWN_CHAINS)" '$0 ~ own {print substr($1, 2)}'); do
                "$tool" -w -t "$table" -X "$chain" 2>/dev/null || say "cannot remove the $tool chain $table/$chain"
            done
        done
    done
}

pod_network_down() {
    # Undo pod_network_up and what the kubelet and kube-proxy added (called once they are stopped).
    local line
    remove_iptables_chains
    ip link show "$POD_BRIDGE" >/dev/null 2>&1 && ip link delete "$POD_BRIDGE"
    if [ -s "$RUN/sysctl.orig" ]; then
        while read -r line; do sysctl -qw "$line" || say "cannot restore $line"; done < "$RUN/sysctl.orig"
    fi
    return 0
}
