#!/usr/bin/env bash
# Bring cluster-onprem.yaml up for real against an SSH server on 127.0.0.1, run a two-trial study through
# `ray job submit`, check its trials table, and tear the cluster down. What it proves: the on-prem config's
# SSH login, project copy (with its rsync exclusions), setup commands, Ray start commands and teardown work
# as `ray up` runs them; a job submitted to the cluster runs the study launcher and writes to shared storage.
# What it does not: several machines (the head is the only node here), NFS, GPUs.
#
# Needs root on Debian/Ubuntu (installs openssh-server and rsync with apt, starts sshd) and the project's
# .venv (scripts/bootstrap.sh); adds Ray's dashboard extras (ray[default], needed by `ray job submit`) to
# the venv. It edits a copy of the config only: head_ip 127.0.0.1, no workers, this machine's user and a
# throwaway key, a temporary folder as the shared storage, the existing venv instead of a new one.
#
#   sudo bash scripts/onprem-loopback.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV: run scripts/bootstrap.sh first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (apt-get, sshd)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/mmt-onprem-loopback.XXXXXX)
KEY=$WORK/id_ed25519
CONFIG=$WORK/cluster-onprem-loopback.yaml
SHARED=$WORK/shared
RAY_VERSION=$("$VENV/bin/python" -c 'import ray; print(ray.__version__)')
export PATH="$VENV/bin:$PATH"

cleanup() {
  set +e
  [ -f "$CONFIG" ] && ray down -y "$CONFIG" >/dev/null 2>&1
  [ -f "$KEY.pub" ] && grep -v -F -f "$KEY.pub" ~/.ssh/authorized_keys > "$WORK/keys" && cat "$WORK/keys" > ~/.ssh/authorized_keys
  [ -f ~/.bashrc ] && grep -v -F "$VENV/bin" ~/.bashrc > "$WORK/bashrc" && cat "$WORK/bashrc" > ~/.bashrc
}
trap cleanup EXIT

echo "== 1. SSH server on 127.0.0.1, a throwaway key, rsync, Ray's job-submission extras"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server rsync >/dev/null
mkdir -p /run/sshd ~/.ssh && chmod 700 ~/.ssh
pgrep -x sshd >/dev/null || /usr/sbin/sshd
ssh-keygen -t ed25519 -N "" -q -f "$KEY"
cat "$KEY.pub" >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys
"$VENV/bin/pip" install -q "ray[default]==$RAY_VERSION"

echo "== 2. a loopback copy of cluster-onprem.yaml"
mkdir -p "$SHARED"
"$VENV/bin/python" - "$REPO/cluster-onprem.yaml" "$CONFIG" "$KEY" "$SHARED" "$VENV" <<'EOF'
import getpass, sys, yaml
source, target, key, shared, venv = sys.argv[1:]
config = yaml.safe_load(open(source))
config["cluster_name"] = "mmt-tune-loopback"
config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
config["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": key}
config["file_mounts"] = {"~/mmt-tune-loopback": "."}
config["setup_commands"] = [
    f"test -d {shared}",
    f"cd ~/mmt-tune-loopback && VENV={venv} bash scripts/bootstrap.sh",
    # as the shipped config does: `ray down` runs a bare `ray stop` in the node's shell
    f"grep -qs '{venv}/bin' ~/.bashrc || echo 'export PATH=\"{venv}/bin:$PATH\"' >> ~/.bashrc",
]
ray = f"{venv}/bin/ray"
config["head_start_ray_commands"] = [
    f"{ray} stop",
    # the only node: it runs the trials too (the shipped config keeps the head free with --num-cpus=0)
    f"{ray} start --head --port=6379 --num-cpus=2 --autoscaling-config=~/ray_bootstrap_config.yaml "
    "--dashboard-host=127.0.0.1 --dashboard-port=8265",
]
config["worker_start_ray_commands"] = [f"{ray} stop", f"{ray} start --address=$RAY_HEAD_IP:6379"]
yaml.safe_dump(config, open(target, "w"), sort_keys=False)
EOF
cat > "$WORK/two-trials.yaml" <<'EOF'
name: loopback
description: two trials of one configuration, on the loopback on-prem cluster
configurations:
  - {model: mmt1m, present: [DWI]}
parameters:
  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-2}
fixed: {epochs: 3, folds: 2}
EOF
cp "$WORK/two-trials.yaml" "$SHARED/"
FEATURES=$("$VENV/bin/python" -c 'from mmt_tune.data.phantom import phantom_features; print(phantom_features(60, progress=False))')
cp "$FEATURES" "$SHARED/features.parquet"

echo "== 3. ray up (SSH to 127.0.0.1, copy, setup, start Ray)"
ray up -y --no-config-cache "$CONFIG"
ray exec "$CONFIG" "test -f ~/mmt-tune-loopback/pyproject.toml && test ! -e ~/mmt-tune-loopback/.venv" \
  || { echo "the project copy is wrong (missing, or it carried .venv)" >&2; exit 1; }

echo "== 4. ray job submit: a two-trial study on the cluster"
# Ray >= 2.5x clusters require a token: the head's ~/.ray/auth_token (the same file here; from another
# machine copy it with `ray exec CONFIG "cat ~/.ray/auth_token"`), sent when RAY_AUTH_MODE=token.
RAY_AUTH_MODE=token RAY_ADDRESS=http://127.0.0.1:8265 ray job submit -- bash -c "cd ~/mmt-tune-loopback && $VENV/bin/python -m mmt_tune.run \
  --space $SHARED/two-trials.yaml --features $SHARED/features.parquet --num-samples 2 \
  --storage $SHARED/results --name loopback --wandb offline"
"$VENV/bin/python" - "$SHARED/results/loopback" <<'EOF'
import sys
from mmt_tune.analysis.results import load_study
study = load_study(sys.argv[1])
trials = study.trials
assert trials["trial_id"].nunique() == 2 and set(trials["status"]) == {"ok"}, trials
print(f"trials table on the shared path: {trials['trial_id'].nunique()} trials x {trials['fold'].nunique()} folds, all ok")
EOF

echo "== 5. ray down"
ray down -y "$CONFIG"
rm -f "$CONFIG"
sleep 3
if pgrep -f "gcs_server.*--gcs_server_port=6379" >/dev/null; then
  echo "the cluster's Ray processes are still running after ray down" >&2; exit 1
fi
echo "loopback on-prem cluster: up, two-trial job, results on shared storage, down: OK"
