#!/usr/bin/env bash
# An SSH server on 127.0.0.1:${LAUNCHER_TEST_SSH_PORT:-2222} for the slurm executor's remote tests: its own
# config, host key, client key and authorized_keys under ~/.cache/launcher/sshd (nothing system-wide is
# changed but the openssh-server package). Prints nothing when it is already up.
set -euo pipefail
port=${LAUNCHER_TEST_SSH_PORT:-2222}
dir=$(python3 "$(dirname "$0")/../launcher/testing/caches.py" sshd)  # LAUNCHER_TEST_SSH_DIR chooses another
if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then exit 0; fi
if [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing openssh-server with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
  else
    echo "error: /usr/sbin/sshd is missing; install openssh-server" >&2; exit 1
  fi
fi
mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/host_ed25519"
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/client_ed25519"
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AcceptEnv none
CONF
/usr/sbin/sshd -f "$dir/sshd_config"
for _ in $(seq 1 20); do
  if ssh -q -i "$dir/client_ed25519" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no \
       -o UserKnownHostsFile=/dev/null "$(id -un)@127.0.0.1" true 2>/dev/null; then
    echo "sshd is up on 127.0.0.1:$port"; exit 0
  fi
  sleep 0.5
done
echo "error: sshd on 127.0.0.1:$port does not answer" >&2
exit 1
