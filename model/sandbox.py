"""Work that cannot be bounded in advance (math-verify's sympy simplification), run in worker processes that
are killed when they overrun.

A thread cannot be stopped and a signal alarm only works in the main thread, so the work goes to a child
process; the caller waits on a pipe and kills the child once it has used `cpu_s` seconds of CPU (read from
/proc, so a loaded machine does not cut a call short the way a wall clock would) or `wall_s` seconds of wall
time, whichever comes first. A killed call raises Overrun; the next call gets a fresh worker forked from a
server that has the libraries imported already (multiprocessing also imports the main script there, as it
does for any forkserver with preloads: scripts keep their work under `if __name__ == "__main__"`). Workers
run under an address-space limit, so an overrun cannot take the machine's memory with it.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

DEFAULT_CPU_S = 0.5
DEFAULT_WALL_S = 5.0
# Address space a worker may add to what it maps at start (~420 MB, 110 MB resident, with sympy and
# math-verify): no call can grow it by 500 MB.
WORKER_MEMORY_BYTES = 450 * 1024 ** 2
PRELOAD = ["sympy", "math_verify", "model.answers"]
WARM_UP = ("model.answers", "math_verify_in_process", ("x^2+2x+1", "(x+1)^2"))
STARTUP_S = 120.0
_POLL_S = 0.02


class Overrun(RuntimeError):
    """The call used more CPU or wall time than it was given, and its worker was killed."""


def _serve(conn, memory_bytes: int, warm_up: tuple | None) -> None:
    """The worker's loop: (module, function, args) in, ("ok", result) or ("error", text) out. It first runs
    `warm_up` (sympy and math-verify import and build much on first use: ~0.3 s of CPU that must not count
    against the first real call's limit), then says it is ready."""
    import importlib
    import resource

    try:
        # on top of what the worker maps already (it inherits the server's imports, and a script's when the
        # script is the main module), so the limit is the growth a call may cause, whatever was imported
        mapped = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                      if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_bytes, mapped + memory_bytes))
    except (ValueError, OSError, StopIteration):
        pass   # a limit above the hard limit: run without it rather than not at all
    if warm_up:
        module, name, args = warm_up
        try:
            getattr(importlib.import_module(module), name)(*args)
        except Exception:  # noqa: BLE001 - a failed warm-up only makes the first call slower
            pass
    conn.send(("ready", None))
    while True:
        try:
            module, name, args = conn.recv()
        except EOFError:
            return
        try:
            result = ("ok", getattr(importlib.import_module(module), name)(*args))
        except BaseException as err:  # noqa: BLE001 - anything the work raises goes back to the caller
            result = ("error", f"{type(err).__name__}: {err}"[:300])
        conn.send(result)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where /proc is not there)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class _Worker:
    def __init__(self, context, warm_up: tuple | None):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, WORKER_MEMORY_BYTES, warm_up), daemon=True,
                                       name="sandbox-worker")
        self.process.start()
        child.close()
        # starting is not the call's work: wait for it outside the call's limits (seconds on a loaded machine)
        if not self.conn.poll(STARTUP_S) or self.conn.recv() != ("ready", None):
            self.kill()
            raise Overrun(f"the worker did not start within {STARTUP_S:g} s")

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class Sandbox:
    """A small pool of worker processes; `call` runs one function in one of them under CPU and wall limits."""

    def __init__(self, workers: int = 2, preload: list[str] | None = None, warm_up: tuple | None = WARM_UP):
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(PRELOAD if preload is None else preload))
        self._warm_up = warm_up
        self._idle: list[_Worker] = []
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()

    def call(self, module: str, function: str, *args: Any, cpu_s: float = DEFAULT_CPU_S,
             wall_s: float = DEFAULT_WALL_S) -> Any:
        """`module.function(*args)` in a worker; raises Overrun (worker killed) or RuntimeError (it raised)."""
        with self._slots:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.process.is_alive():
                worker = _Worker(self._context, self._warm_up)
            try:
                status, value = self._run(worker, (module, function, args), cpu_s, wall_s)
            except BaseException:
                worker.kill()
                raise
            with self._lock:
                self._idle.append(worker)
        if status == "error":
            raise RuntimeError(value)
        return value

    @staticmethod
    def _run(worker: _Worker, request, cpu_s: float, wall_s: float):
        start_cpu, start = _cpu_seconds(worker.process.pid), time.monotonic()
        worker.conn.send(request)
        while not worker.conn.poll(_POLL_S):
            if not worker.process.is_alive():
                raise Overrun("the worker died (memory limit?)")
            if _cpu_seconds(worker.process.pid) - start_cpu > cpu_s:
                raise Overrun(f"more than {cpu_s:g} s of CPU")
            if time.monotonic() - start > wall_s:
                raise Overrun(f"more than {wall_s:g} s")
        try:
            return worker.conn.recv()
        except EOFError:
            raise Overrun("the worker died (memory limit?)") from None

    def warm(self) -> None:
        """Start the server and one worker now (a few seconds: they import sympy and math-verify), so that the
        first real call does not pay for it."""
        self.call("math", "sqrt", 4.0, cpu_s=60, wall_s=300)

    def worker_pids(self) -> list[int]:
        """Process ids of the idle workers (for measuring their memory)."""
        with self._lock:
            return [w.process.pid for w in self._idle if w.process.is_alive()]

    def close(self) -> None:
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            worker.kill()


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared() -> Sandbox:
    """The process's one sandbox (started on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox()
        return _shared
