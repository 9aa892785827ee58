#!/bin/sh
# Root-made setup for eg-yarn's tests and benchmark. Idempotent; scripts/test.sh calls it after
# installing the packages into .venv.
#
#   - MIT Kerberos: krb5-kdc, krb5-admin-server and krb5-user for the tests' KDC on loopback
#     (eg_core.testing._kerberos), libkrb5-dev to build python-gssapi
# (scripts/test.sh installs eg-yarn's test extra, whose python-gssapi builds against libkrb5-dev:
# .ci/run installs these packages before it.)
# No YARN is installed: none can run here; the tests start an emulated ResourceManager.
set -eu
cd "$(dirname "$0")/../../.."

need=""
[ -x /usr/sbin/krb5kdc ] || need="$need krb5-kdc"
[ -x /usr/sbin/kadmin.local ] || need="$need krb5-admin-server"
command -v kinit >/dev/null 2>&1 || need="$need krb5-user"
command -v krb5-config >/dev/null 2>&1 || need="$need libkrb5-dev"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "eg-yarn setup: need root to install$need" >&2
        exit 1
    fi
    echo "eg-yarn setup: installing$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # the packages must not start a system KDC
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    status=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends $need; } >&2 || status=$?
    if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
    exec 7>&-
    [ "$status" = 0 ] || exit "$status"
fi

