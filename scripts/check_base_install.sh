#!/usr/bin/env bash
# The base install (no extras) runs `python -m deploy` against a UDP robot, and holds no training stack.
#   scripts/check_base_install.sh POLICY.onnx [VENV_DIR]
# The robot end runs from the project's dev venv (.venv, with the train extra) on a loopback port.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
policy="$(realpath "$1")"
venv="${2:-$(mktemp -d /tmp/robotrl-base.XXXXXX)/venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$repo"
for mod in torch gymnasium mujoco yaml robotrl.train.trainer; do
    if (cd /tmp && "$venv/bin/python" -c "import $mod" 2>/dev/null); then
        echo "base install: $mod is importable, expected it absent" >&2; exit 1
    fi
done
echo "base install: torch, gymnasium, mujoco, yaml absent; packages: $("$venv/bin/pip" list --format=freeze | tr '\n' ' ')"
# Importing deploy must not pull any of them either (they are absent, so this proves it).
(cd /tmp && "$venv/bin/python" -c "import deploy, deploy.runner, deploy.cli, deploy.backends.udp")
# The sim backend points to the train extra.
if (cd /tmp && "$venv/bin/python" -m deploy "$policy" --backend sim 2>"$venv/sim.err"); then
    echo "base install: --backend sim should have failed" >&2; exit 1
fi
grep -q "robotrl\[train\]" "$venv/sim.err" && echo "sim backend: $(cat "$venv/sim.err")"
# A simulated robot over UDP, served from the dev venv.
"$repo/.venv/bin/python" -m robotrl.tools.udp_robot --port 0 > "$venv/peer.out" 2>/dev/null &
peer=$!
trap 'kill $peer 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "^port" "$venv/peer.out" 2>/dev/null && break; sleep 0.1; done
port="$(awk '/^port/ {print $2}' "$venv/peer.out")"
(cd /tmp && "$venv/bin/python" -m deploy "$policy" --backend udp --port "$port" --rate 200 --duration 3 \
    --out "$venv/deploy-out" --json) | tee "$venv/summary.json"
"$venv/bin/python" - "$venv/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["backend"] == "udp" and s["stopped_by"] == "duration", s
assert s["robot"]["received"] > 0.5 * s["ticks"], s
print(f"base install: python -m deploy ran {s['ticks']} ticks over UDP, {s['robot']['received']} observations")
PY
