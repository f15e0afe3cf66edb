"""Start-up times a newcomer waits for: every CLI's --help, the app's first page and its first solve.

    python bench/startup.py [--runs 3] [--cold] [--no-app]

--help: the fastest of --runs wall times per CLI (targets: < 1 s each). The app: `python -m app` on a free
loopback port, the time from launch until GET / answers 200 (target: 5 s), then one solve through the public
"solve" endpoint (gradio_client) on a gallery question, timed from the request (target: 3 s) and from launch,
with the CPU seconds of the app's process tree at both points (a loaded machine stretches wall time, not CPU
time) and its resident memory; then the same for `--in-process` (the model inside the web server's process),
the peer in the same run.
The app gets its own cache folder with the bank built and its theorems embedded beforehand (as every start after
the first finds it); --cold leaves it empty (the bank is built and embedded at start, as on a fresh clone). Prints ONE JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELPS = {
    "app": [sys.executable, "-m", "app", "--help"],
    "train.py": [sys.executable, "train.py", "--help"],
    "evaluate.py": [sys.executable, "evaluate.py", "--help"],
    "evaluate.py run": [sys.executable, "evaluate.py", "run", "--help"],
    "theorem_bank": [sys.executable, "-m", "theorem_bank", "--help"],
    "training.synthetic": [sys.executable, "-m", "training.synthetic", "--help"],
    "training.data": [sys.executable, "-m", "training.data", "--help"],
}


def help_seconds(command: list[str], runs: int, env: dict) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return round(best, 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (the model process, the grader's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the app's whole process tree (Linux /proc; None elsewhere)."""
    ticks = [int(f[11]) + int(f[12]) for f in map(_stat, process_tree(pid)) if f]
    return round(sum(ticks) / os.sysconf("SC_CLK_TCK"), 2) if ticks else None


def resident_mb(pid: int) -> float | None:
    """Resident memory of the app's process tree, MB."""
    pages = [int(f[21]) for f in map(_stat, process_tree(pid)) if f]
    return round(sum(pages) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1) if pages else None


def app_seconds(env: dict, extra: list[str], timeout: float = 180.0) -> dict:
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), *extra], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = None
        while page is None:
            if server.poll() is not None:
                raise RuntimeError(f"the app exited with {server.returncode}: {server.stderr.read()[-2000:]}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"no page within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        page = time.perf_counter() - start
                        page_cpu = cpu_seconds(server.pid)
            except OSError:
                time.sleep(0.1)
        client = Client(url, verbose=False)
        asked = time.perf_counter()
        outputs = client.predict(None, "AB ∥ CD and EF crosses them at G and H. ∠EGB = 50°. Find ∠GHD.", "", "", "", "",
                       False, api_name="/solve")
        done = time.perf_counter()
        if "tt-answer" not in str(outputs[3]):  # an error notice answers fast too: only a real answer counts
            raise RuntimeError(f"the first solve gave no answer; status: {outputs[0][:500]}")
        return {"app_first_page_s": round(page, 2), "app_first_solve_s": round(done - asked, 2),
                "app_launch_to_first_answer_s": round(done - start, 2), "app_cpu_at_first_page_s": page_cpu,
                "app_cpu_at_first_answer_s": cpu_seconds(server.pid), "app_resident_mb": resident_mb(server.pid)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="--help runs per CLI; the fastest counts")
    parser.add_argument("--cold", action="store_true", help="start the app with an empty theorem-bank cache")
    parser.add_argument("--no-app", action="store_true", help="time the --help texts only")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    figures: dict = {"help_s": {name: help_seconds(cmd, args.runs, env) for name, cmd in HELPS.items()}}
    figures["help_max_s"] = max(figures["help_s"].values())
    if not args.no_app:
        with tempfile.TemporaryDirectory(prefix="startup-bench-") as scratch:
            for prefix, extra in (("app_", []), ("in_process_", ["--in-process"])):  # the peer: model in-process
                # Its own cache and upload folders: the bench never touches the user's files, and each start
                # finds the cache as --cold says.
                app_env = dict(env, GRADIO_TEMP_DIR=str(Path(scratch) / prefix / "gradio"),
                               THEOREM_TUTOR_CACHE=str(Path(scratch) / prefix / "cache"))
                if not args.cold:  # warm: the bank file and its embedding cache exist, as on every later start
                    subprocess.run([sys.executable, "-c", "from theorem_bank import open_bank; open_bank().dense_index()"],
                                   cwd=REPO, env=app_env, check=True)
                figures.update({prefix + name.removeprefix("app_"): value
                                for name, value in app_seconds(app_env, extra).items()})
            figures["cold_cache"] = args.cold
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
