#!/bin/sh
# Root-made setup for the eg-ssh tests and benchmark. Idempotent; the main .ci/run calls it.
#
#   - openssh-server (the tests start their own sshd with a temporary config; nothing else runs)
#   - /run/sshd, sshd's privilege-separation directory
#   - test users egtest and egtest2 (home dirs, bash; their authorized keys live in the tests'
#     own sshd directory, so nothing is written into their homes). egtest's password field is
#     '*' (no password, but not locked: sshd with UsePAM=no refuses locked accounts even with
#     keys); egtest2 has the password $EG_SSH_TEST_PASSWORD, for the password-login tests (the
#     tests' sshd listens on loopback only)
#   - a world-readable kernel venv built from /usr/bin/python3 with ipykernel, at
#     $EG_SSH_TEST_VENV (default /opt/eg-ssh-test/venv): the test users cannot reach the
#     gateway's own Python (root's pyenv lives under /root, mode 700)
set -eu

VENV=${EG_SSH_TEST_VENV:-/opt/eg-ssh-test/venv}
USERS=${EG_SSH_TEST_USERS:-"egtest egtest2"}
PASSWORD_USER=${EG_SSH_TEST_PASSWORD_USER:-egtest2}
PASSWORD=${EG_SSH_TEST_PASSWORD:-eg-ssh-test-password}

if [ "$(id -u)" != 0 ]; then
    echo "eg-ssh setup: must run as root (it installs packages and creates users)" >&2
    exit 1
fi

need_apt=""
[ -x /usr/sbin/sshd ] || need_apt="$need_apt openssh-server"
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt="$need_apt python3-venv"
if [ -n "$need_apt" ]; then
    echo "eg-ssh setup: installing$need_apt"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package from starting the system sshd (port 22, all interfaces) where an init
    # system would: the tests run their own sshd on loopback only.
    exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    apt-get update -q
    status=0
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $need_apt || status=$?
    if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
    exec 7>&-
    [ "$status" = 0 ] || exit "$status"
fi

mkdir -p /run/sshd
chmod 755 /run/sshd

for user in $USERS; do
    if ! id "$user" >/dev/null 2>&1; then
        echo "eg-ssh setup: creating user $user"
        useradd -m -s /bin/bash "$user"
    fi
    # A new account's password field is '!' (locked): sshd with UsePAM=no refuses even key logins.
    if [ "$user" = "$PASSWORD_USER" ]; then
        echo "$user:$PASSWORD" | chpasswd
    else
        usermod -p '*' "$user"
    fi
done

if ! "$VENV/bin/python" -c 'import ipykernel' >/dev/null 2>&1; then
    echo "eg-ssh setup: building the kernel venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check ipykernel
fi
chmod -R a+rX "$(dirname "$VENV")"

echo "eg-ssh setup: done (sshd $(/usr/sbin/sshd -V 2>&1 | head -1 || true); venv $VENV)"
