"""Hostile inputs through the tutor's and the evaluator's real entry points: does any of them run code, take
over 2 s, or take over 500 MB? And does the app still answer another session within 1 s meanwhile?

    python bench/hostile.py [--server-seconds 8] [--out runs/hostile.jsonl]

Each hostile kind (model output, typed choices, answers, bank seeds, uploads) goes through
app.handlers.render_output (the app's render of a solution, answer box included) or app.handlers.make_problem
(the upload check), and through training.evaluation.scoring.score_output (the evaluator's scoring of one
output). Calls run one by one in a child process that measures each call's wall time and the growth of its peak
memory (its own and its sandbox workers', reset before every call); a call that hangs is killed by the parent
after 30 s and counts as over 2 s. "executed" counts calls after which the payloads' side effect (a file named
pwned) exists. Then a real server (ui.build_ui, launched on 127.0.0.1) serves a replay tutor: one session keeps
solving the slowest kind while another times GET /config and a benign solve, a bounded number of times.

Prints ONE JSON line: tried / executed / over_2s / over_500mb (goal 0 for the last three; over_2s counts wall
time, over_2s_cpu the call's own CPU time, which other jobs on the machine do not inflate), the slowest call,
and the other session's worst latency (goal under 1 s).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CALL_KILL_S = 30.0
TOUCH = "__import__('os').system('touch pwned')"
MAP = "angle1 = ∠A = 50°; angle2 = ∠B"
BENIGN = ("Theorem: linear_pair | Angles forming a straight line\nCond: ∠A and ∠B form a straight line\n"
          f"Map: {MAP}\nExec: angle1 + angle2 = 180° => ∠B = 130°\nAnswer: 130° (B)\n")
BENIGN_CHOICES = ["50°", "130°", "40°", "140°"]


def step(exec_text: str, map_text: str = MAP, theorem: str = "linear_pair") -> str:
    return f"Theorem: {theorem} | t\nCond: c\nMap: {map_text}\nExec: {exec_text}\n"


def solution(*steps: str, answer: str = "130° (B)") -> str:
    return "".join(steps) + f"Answer: {answer}\n"


def nested_frac(depth: int) -> str:
    text = "x"
    for _ in range(depth):
        text = "\\frac{x}{1+" + text + "}"
    return text


SLOW_TRIG = " + ".join(f"sin({k}∠B)" for k in range(1, 41)) + " = 0.3 => ∠B = 7"


def slow_trig(offset: int) -> str:
    """As slow a relation as the grammar allows (12 functions): a numeric solve of sines, new to sympy's caches."""
    return " + ".join(f"sin({k + offset}∠B)" for k in range(1, 13)) + f" = 0.{offset + 3} => ∠B = 7"


def output_kinds() -> dict[str, dict]:
    """name -> {"output": model text, "choices": typed choices or None, "gold": gold answer, "bank": extra theorems}"""
    kinds = {
        # one-line Exec texts the checker must refuse or bound (the ones first)
        "power of power, stated value substituted": step("((∠B)^1000)^1000 = 5 => ∠B = 10^30"),
        "factorial, stated value substituted": step("factorial(∠B) = 1 => ∠B = 10000000"),
        "postfix factorial of the unknown": step("∠B! = 1 => ∠B = 100000"),
        "degree 999 at a big stated value": step("∠B^999 = 5 => ∠B = 10^39"),
        "caret tower": step("9^9^9^9 = ∠B => ∠B = 1"),
        "latex tower": step("9^{9^{9^{9}}} = ∠B => ∠B = 1"),
        "power of a power of ten": step("10^(10^10) = ∠B => ∠B = 1"),
        "factorial of a billion": step("factorial(10**9) = ∠B => ∠B = 1"),
        "postfix factorial of a billion": step("(10^9)! = ∠B => ∠B = 1"),
        "root power tower in Exec": step("((√3^999)^999)^999 = ∠B => ∠B = 1"),
        "root power tower in Map": step("angle1 + angle2 = 180 => ∠B = 130°",
                                        "angle1 = ∠A = ((√3^999)^999)^999; angle2 = ∠B"),
        "irrational exponent": step("2^(√2*1000) = ∠B => ∠B = 1"),
        "5000-digit literal": step("1" * 5000 + " = ∠B => ∠B = 1"),
        "megabyte Exec": step("1+" * 500_000 + "1 = ∠B => ∠B = 1"),
        "deep parentheses": step("(" * 5000 + "1" + ")" * 5000 + " = ∠B => ∠B = 1"),
        "deep latex fractions": step("\\frac{" * 2000 + "1" + "}{2}" * 2000 + " = ∠B => ∠B = 1"),
        "deep square roots": step("√" * 5000 + "2 = ∠B => ∠B = 1"),
        "import payload": step(f"{TOUCH} => ∠B = 130°"),
        "eval payload": step(f"eval(\"{TOUCH}\") = ∠B => ∠B = 1"),
        "lambda payload": step(f"(lambda: {TOUCH})() = ∠B => ∠B = 1"),
        "subclasses payload": step("().__class__.__bases__[0].__subclasses__() = ∠B => ∠B = 1"),
        "f-string payload": step(f"f\"{{{TOUCH}}}\" = ∠B => ∠B = 1"),
        "payload as the stated value": step(f"angle1 + angle2 = 180 => ∠B = {TOUCH}"),
        "payload in Map": step("angle1 + angle2 = 180 => ∠B = 130°", f"angle1 = ∠A = {TOUCH}; angle2 = ∠B"),
        "sine of a huge argument": step("sin(10^39 ∠B) = 0.5 => ∠B = 10^39"),
        "numeric solve of 40 sines": step(SLOW_TRIG),
        "slow numeric solve (12 sines)": step(slow_trig(0)),
        "degree 999 compared with the theorem": step("(angle1 + angle2 + 1)^999 = angle2 => ∠B = 5"),
        "degree 12 compared with the theorem": step("(angle1 + angle2 + 1)^12 = (angle2 + 181)^12 => ∠B = 5"),
        "big Map value to a power": step("angle1^20 + angle2 = 180 => ∠B = 130°", "angle1 = ∠A = 2^1000; angle2 = ∠B"),
        "root of a huge power": step("√(10^39)^999 = ∠B => ∠B = 1"),
        "complex values": step("acos(∠B) = 3 => ∠B = 7"),
        "division by zero": step("1/(∠B - ∠B) = 1 => ∠B = 1"),
        "100 conclusions": step("angle1 + angle2 = 180 => " + ", ".join(f"∠B = {k}" for k in range(100))),
        "control and bidi characters": step("\x00\x01\u202e∠B\u0301 = 1 => ∠B = 1"),
    }
    kinds = {name: {"output": solution(text)} for name, text in kinds.items()}
    kinds["12 slow steps in one solution"] = {"output": solution(*[step(slow_trig(0))] * 12)}
    kinds["12 different slow steps in one solution"] = {"output": solution(*[step(slow_trig(k)) for k in range(1, 13)])}
    kinds["300 wrong steps in one solution"] = {
        "output": solution(*[step(f"angle1 + angle2 = 180 => ∠B = {k}") for k in range(300)])}
    # answers the grader must bound before math-verify sees them
    for name, answer in {
        "answer (x+y+1)^{999}": "\\boxed{(x+y+1)^{999}}",
        "answer nested \\frac depth 20": "\\boxed{" + nested_frac(20) + "}",
        "answer latex tower": "\\boxed{9^{9^{9^{9}}}}",
        "answer 10^{10^{10}}": "\\boxed{10^{10^{10}}}",
        "answer 100000!": "\\boxed{100000!}",
        "answer binomial": "\\boxed{\\binom{100000}{50000}}",
        "answer sum to a billion": "\\boxed{\\sum_{i=1}^{10^9} i}",
        "answer 20000 characters": "\\boxed{" + "1+" * 10_000 + "1}",
        "answer nested square roots": "\\boxed{" + "\\sqrt{" * 50 + "2" + "}" * 50 + "}",
        "answer 2^{999}": "\\boxed{2^{999}}",
        "answer symbolic power 40": "\\boxed{(x+1)^{40}-(x-1)^{40}}",
    }.items():
        kinds[name] = {"output": f"The answer is {answer}.", "gold": "x+y+1", "mode": "open"}
    # typed choices (the app's answer box matches the model's value against them)
    for name, choice in {
        "choice ((√3^999)^999)^999": "((√3^999)^999)^999",
        "choice 1000!": "1000!",
        "choice caret tower": "9^9^9^9",
        "choice 300 brackets": "(" * 150 + ")" * 150,
        "choice factorial(∠B)": "factorial(10^7)",
    }.items():
        kinds[name] = {"output": BENIGN.replace("(B)", ""), "choices": [choice, "130", "50", "40"]}
    # bank seeds (untrusted too): relations that the Map's values would blow up
    kinds["bank relation of degree 999"] = {
        "output": solution(step("angle2 = angle1^2 => ∠B = 2500", "angle1 = ∠A = 10^30; angle2 = ∠B", "hostile_power")),
        "bank": {"id": "hostile_power", "name": "hostile", "roles": {"angle1": {}, "angle2": {}},
                 "relations": ["angle2 = angle1^999"]}}
    kinds["bank relation with a factorial"] = {
        "output": solution(step("angle2 = angle1 => ∠B = 10000000", "angle1 = ∠A = 10000000; angle2 = ∠B",
                                "hostile_factorial")),
        "bank": {"id": "hostile_factorial", "name": "hostile", "roles": {"angle1": {}, "angle2": {}},
                 "relations": ["angle2 = factorial(angle1)"]}}
    return kinds


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def image_kinds(folder: Path) -> dict[str, Path]:
    """Uploads: written once into `folder` (the 8000x8000 PNG is made row by row, never held decoded)."""
    files = {}
    big = folder / "8000x8000.png"
    if not big.exists():
        row = b"\x00" + b"\xff" * (8000 * 3)
        compressor, data = zlib.compressobj(9), []
        for _ in range(8000):
            data.append(compressor.compress(row))
        data.append(compressor.flush())
        idat = b"".join(data)

        def chunk(kind: bytes, payload: bytes) -> bytes:
            return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

        ihdr = (8000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
        big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    files["upload 8000x8000 PNG"] = big
    for name, (w, h) in {"upload 20000x20000 header": (20000, 20000), "upload 9000x9000 header": (9000, 9000),
                         "upload 1x60000 strip": (1, 60000)}.items():
        path = folder / f"{w}x{h}.png"
        path.write_bytes(png_header_only(w, h))
        files[name] = path
    truncated = folder / "truncated.png"
    truncated.write_bytes(big.read_bytes()[:5000])
    files["upload truncated PNG"] = truncated
    (folder / "not-an-image.png").write_bytes(b"<script>alert(1)</script>" * 100)
    files["upload HTML named .png"] = folder / "not-an-image.png"
    return files


# ------------------------------------------------------------------------------------------- the child process
class _Bank:
    """The real bank plus the kind's hostile theorems (render_output and score_output only call get/all)."""

    def __init__(self, bank, extra: dict | None):
        self.bank, self.extra = bank, extra

    def get(self, theorem_id):
        if self.extra and theorem_id == self.extra["id"]:
            return self.extra
        return self.bank.get(theorem_id)

    def all(self):
        return self.bank.all() + ([self.extra] if self.extra else [])


def _status(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _reset_peak(pid: int | str) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _call(kind: dict, entry: str, bank, images: dict[str, Path]):
    from app import handlers
    from training.evaluation.scoring import score_output
    from training.records import ProblemRecord

    if entry == "app upload":
        try:
            handlers.make_problem(str(images[kind["image"]]), "Find ∠B.", BENIGN_CHOICES)
        except handlers.InputProblem:
            pass
        return
    bank = _Bank(bank, kind.get("bank"))
    if entry == "app render":
        handlers.render_output(kind["output"], bank, kind.get("choices"), final=True)
        return
    mode = kind.get("mode", "choice" if kind.get("choices") or "gold" not in kind else "open")
    choices = kind.get("choices") or (BENIGN_CHOICES if mode == "choice" else None)
    record = ProblemRecord(id="hostile", source="bench", split="test", question="Find ∠B.",
                           answer=kind.get("gold", "130°"), choices=choices,
                           answer_index=1 if choices else None)
    score_output(record, kind["output"], mode=mode, bank=bank)


def child(image_dir: Path) -> None:
    """Read (name, entry) lines, run each call, answer one JSON line per call."""
    import logging

    logging.disable(logging.CRITICAL)
    from app import handlers
    from model import sandbox
    from theorem_bank import open_bank

    bank = open_bank(dense=False)
    kinds = output_kinds()
    images = image_kinds(image_dir)
    kinds.update({name: {"image": name} for name in images})
    for entry in ("app render", "evaluator scoring"):   # warm caches and the sandbox worker: not hostile calls
        _call({"output": BENIGN, "choices": BENIGN_CHOICES}, entry, bank, images)
        _call({"output": "The answer is \\boxed{\\frac{1}{2}}.", "gold": "1/2", "mode": "open"}, entry, bank, images)
    handlers.render_output(BENIGN, bank, BENIGN_CHOICES, final=True)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        name, entry = json.loads(line)
        pids = ["self", *sandbox.shared().worker_pids()]
        base = {pid: _status(pid, "VmRSS") for pid in pids}
        for pid in pids:
            _reset_peak(pid)
        workers_cpu = sum(sandbox._cpu_seconds(pid) for pid in pids[1:])
        cpu, start = time.process_time(), time.perf_counter()
        error = None
        try:
            _call(kinds[name], entry, bank, images)
        except Exception as err:  # noqa: BLE001 - an entry point that raises is reported, not fatal
            error = f"{type(err).__name__}: {err}"[:200]
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu + max(0.0, sum(sandbox._cpu_seconds(pid) for pid in pids[1:]) - workers_cpu)
        grown = sum(max(0, _status(pid, "VmHWM") - base[pid]) for pid in pids)
        print(json.dumps({"kind": name, "entry": entry, "wall_s": round(wall, 4),
                          "cpu_s": round(cpu, 4), "peak_growth_mb": round(grown / 2 ** 20, 1),
                          "raised": error}), flush=True)


# ------------------------------------------------------------------------------------------- the parent
def run_calls(calls: list[tuple[str, str]], image_dir: Path, work_dir: Path) -> list[dict]:
    results: list[dict] = []
    pending = list(calls)
    while pending:
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(image_dir)], cwd=work_dir,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
        assert json.loads(proc.stdout.readline()).get("ready"), "the bench child did not start"
        while pending:
            name, entry = pending[0]
            proc.stdin.write(json.dumps([name, entry]) + "\n")
            proc.stdin.flush()
            answer: list[str] = []
            reader = threading.Thread(target=lambda: answer.append(proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(CALL_KILL_S)
            pending.pop(0)
            if answer and answer[0].strip():
                result = json.loads(answer[0])
            else:
                proc.kill()
                result = {"kind": name, "entry": entry, "wall_s": CALL_KILL_S, "killed": True,
                          "peak_growth_mb": None}
            result["executed"] = (work_dir / "pwned").exists()
            results.append(result)
            if result.get("killed"):
                break
        proc.kill()
        proc.wait()
    return results


class _Replay:
    """A tutor whose model writes `text` for questions starting with "hostile", else a benign solution."""
    identity = {"model": "hostile replay", "demo": False}

    def __init__(self, text: str):
        self.text = text

    def stream(self, question, choices=None, image=None, theorems=()):
        yield self.text if question.startswith("hostile") else BENIGN


def serve(kind_name: str, port: int) -> None:
    """The app's real UI and handlers (ui.build_ui, queue as `python -m app` sets it) on 127.0.0.1."""
    import logging

    logging.disable(logging.CRITICAL)
    from app import ui
    from theorem_bank import open_bank

    blocks = ui.build_ui(_Replay(output_kinds()[kind_name]["output"]), open_bank(dense=False), None, [])
    blocks.queue(default_concurrency_limit=1, max_size=16)
    blocks.launch(server_name="127.0.0.1", server_port=port, quiet=True, ssr_mode=False)


def other_session_latency(kind_name: str, seconds: float) -> dict:
    """A real server (its own process, 127.0.0.1) solving `kind_name` in one session while another is timed."""
    import socket

    import httpx
    from gradio_client import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind_name, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(url + "config", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the bench server did not start") from None
                time.sleep(0.5)
        kind = output_kinds()[kind_name]
        hostile_choices = ((kind.get("choices") or []) + [""] * 4)[:4]
        solved: list[float] = []
        warm = Client(url, verbose=False)
        warm.predict(None, "warm up", *BENIGN_CHOICES, False, api_name="/solve")   # imports, caches: not timed
        stop = time.monotonic() + seconds

        def hostile_session():
            client = Client(url, verbose=False)
            while time.monotonic() < stop and len(solved) < 200:
                start = time.perf_counter()
                client.predict(None, "hostile: solve this", *hostile_choices, False, api_name="/solve")
                solved.append(time.perf_counter() - start)

        worker = threading.Thread(target=hostile_session, daemon=True)
        worker.start()
        time.sleep(0.3)
        pages, solves = [], []
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop and len(pages) < 200:
                for path in ("config", ""):   # what a new session loads first: the app config and the page
                    start = time.perf_counter()
                    http.get(url + path).raise_for_status()
                    pages.append(time.perf_counter() - start)
                start = time.perf_counter()
                warm.predict(None, "AB is a line; find ∠B.", *BENIGN_CHOICES, False, api_name="/solve")
                solves.append(time.perf_counter() - start)
                time.sleep(0.2)
        worker.join(120)
    finally:
        server.kill()
        server.wait()
    return {"hostile_solves": len(solved), "hostile_solve_max_s": round(max(solved, default=0), 3),
            "other_page_max_s": round(max(pages, default=0), 3), "other_page_requests": len(pages),
            "other_solve_max_s": round(max(solves, default=0), 3), "other_solves": len(solves)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-seconds", type=float, default=8.0)
    parser.add_argument("--out", default=None, help="also write every call's line here (JSONL)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--server-only", default=None, metavar="KIND",
                        help="only the server measurement, with this kind as the slow session")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.child:
        child(Path(args.child))
        return 0
    if args.server_only:
        print(json.dumps(other_session_latency(args.server_only, args.server_seconds), ensure_ascii=False))
        return 0
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        (tmp / "work").mkdir()
        kinds = output_kinds()
        images = image_kinds(tmp / "images")
        calls = [(name, entry) for name in kinds for entry in ("app render", "evaluator scoring")]
        calls += [(name, "app upload") for name in images]
        results = run_calls(calls, tmp / "images", tmp / "work")
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8")
    slowest = max((r for r in results if r["entry"] != "app upload"), key=lambda r: r["wall_s"])
    server = other_session_latency(slowest["kind"], args.server_seconds)
    print(json.dumps({
        "kinds": len({r["kind"] for r in results}), "tried": len(results),
        "executed": sum(r["executed"] for r in results),
        "over_2s": sum(r["wall_s"] > 2 for r in results),
        "over_2s_cpu": sum(r.get("cpu_s", CALL_KILL_S) > 2 for r in results),
        "max_cpu_s": max(r.get("cpu_s", CALL_KILL_S) for r in results),
        "over_500mb": sum(r.get("peak_growth_mb") is None or r["peak_growth_mb"] > 500 for r in results),
        "raised": sum(bool(r.get("raised")) for r in results),
        "slowest": {k: slowest.get(k) for k in ("kind", "entry", "wall_s", "cpu_s")},
        "max_peak_growth_mb": max((r["peak_growth_mb"] or 0) for r in results),
        "worst_kind_on_server": slowest["kind"], **server,
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
