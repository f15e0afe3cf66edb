"""The local model in a process of its own, behind the same backend interface as model.backends.LocalBackend.

Why: a web server and a model in one process share one interpreter lock. At start-up the model's imports
(torch, transformers, torchvision: ~4 s of CPU) then wait for the web framework's, so on a 2-core machine the
first answer came ~5 s after the page although the second core sat idle; while answering, generation and the
page's event loop take turns. In its own process the model loads on the other core while the page starts,
and a crash of the model process (out of memory) ends requests with a clear error, not the server.

    backend = WorkerBackend(partial(open_backend, "local", model=...))  # returns at once; the process loads
    backend.profile                                                 # waits until it has loaded (or failed)
    for piece in backend.stream(conversation, options): ...         # closing the iterator stops generating

Messages on the pipe, parent -> worker: (kind, id, *arguments) with kind "stream", "generate", "sample",
"in_flight", or ("cancel", id). Worker -> parent: ("ready", None, info), ("failed", None, error), and per request ("piece", id,
text)..., then ("end", id, None), ("result", id, value) or ("error", id, exception).
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing
import pickle
import queue
import threading
from typing import Any, Iterator

log = logging.getLogger("model.worker")

# A short answer generated before the worker reports ready: the first real request would pay for it otherwise
# (first-call costs of the processor, the image path and the decoding loop).
_WARM_UP_TOKENS = 4


def _portable(error: BaseException) -> BaseException:
    """The exception itself when it survives pickling (the parent re-raises the same type), else its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _warm_up(backend) -> None:
    from PIL import Image

    from model.generation import GenerationOptions
    from model.prompting import build_messages

    options = GenerationOptions(max_new_tokens=_WARM_UP_TOKENS)
    conversation = build_messages("Warm up: find x.", image=Image.new("RGB", (112, 112), "white"))
    for _ in backend.stream(conversation, options):
        pass


def _serve(conn, open_in_child) -> None:
    """The worker process: load, warm up, report, then answer requests, each on its own thread (the backend's
    model lock orders them, as in one process), until the parent closes the pipe."""
    try:
        backend = open_in_child()
        _warm_up(backend)
    except BaseException as err:  # noqa: BLE001 - every load failure is the parent's to report
        conn.send(("failed", None, _portable(err)))
        return
    loaded = backend.loaded
    conn.send(("ready", None, {"profile": backend.profile.to_dict(), "device": str(loaded.device),
                               "dtype": str(loaded.dtype), "describe": backend.describe()}))
    sending = threading.Lock()
    cancelled: dict[int, threading.Event] = {}

    def send(message) -> None:
        with sending:
            conn.send(message)

    def answer(kind: str, request: int, arguments: tuple) -> None:
        try:
            if kind == "stream":
                pieces = backend.stream(*arguments)
                try:
                    for piece in pieces:
                        if cancelled[request].is_set():
                            break
                        send(("piece", request, piece))
                finally:
                    pieces.close()  # stops the generation thread of model.generation.stream
                send(("end", request, None))
            else:
                send(("result", request, getattr(backend, kind)(*arguments)))
        except BaseException as err:  # noqa: BLE001 - it belongs to the request, not to the worker
            send(("error", request, _portable(err)))
        finally:
            cancelled.pop(request, None)

    while True:
        try:
            kind, request, *arguments = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if kind == "cancel":
            if request in cancelled:
                cancelled[request].set()
            continue
        if kind == "in_flight":
            send(("result", request, len(cancelled)))
            continue
        cancelled[request] = threading.Event()
        threading.Thread(target=answer, args=(kind, request, tuple(arguments)), daemon=True,
                         name=f"answer-{request}").start()


class WorkerBackend:
    """model.backends.LocalBackend's interface, the model living in a child process (see the module doc)."""

    def __init__(self, open_in_child, *, error_type: type[Exception] = RuntimeError, start_method: str = "spawn"):
        """`open_in_child()` opens a LocalBackend in the child (a picklable callable, e.g. a partial of
        model.backends.open_backend); `error_type` is what the death of the process is reported as."""
        # spawn: a fresh interpreter that imports only what the model needs, never the parent's web server
        self._context = multiprocessing.get_context(start_method)
        self._open_in_child, self._error_type = open_in_child, error_type
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._start()

    # ---------------------------------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._conn = parent
        self._ready = threading.Event()
        self._info: dict | None = None
        self._failure: BaseException | None = None
        self._pending: dict[int, queue.Queue] = {}
        self._sending = threading.Lock()
        self.process = self._context.Process(target=_serve, args=(child, self._open_in_child), daemon=True,
                                             name="tutor-model")
        self.process.start()
        child.close()
        threading.Thread(target=self._read, args=(parent, self._pending, self._ready), daemon=True,
                         name="tutor-model-reader").start()

    def _read(self, conn, pending: dict, ready: threading.Event) -> None:
        """Route the worker's messages to the requests waiting for them; when the worker dies, fail them all."""
        while True:
            try:
                kind, request, value = conn.recv()
            except (EOFError, OSError):
                break
            if kind == "ready":
                self._info = value
                ready.set()
            elif kind == "failed":
                self._failure = value
                ready.set()
            elif request in pending:
                pending[request].put((kind, value))
        self.process.join(timeout=5)
        died = self._error_type(f"the model process ended (exit code {self.process.exitcode}; out of memory?); "
                            "the next request starts it again")
        if not ready.is_set():
            self._failure = self._failure or died
            ready.set()
        for waiting in list(pending.values()):
            waiting.put(("error", died))

    def wait_ready(self, timeout: float | None = None) -> dict:
        """The worker's description once it has loaded; raises what its load raised."""
        if not self._ready.wait(timeout):
            raise TimeoutError("the model process is still loading")
        if self._failure is not None:
            raise self._failure
        return self._info

    def _alive(self) -> None:
        """Start a new worker if the last one died after loading (a load failure stays an error)."""
        with self._lock:
            if self._ready.is_set() and self._failure is None and not self.process.is_alive():
                log.warning("the model process had ended (exit code %s); starting it again", self.process.exitcode)
                self._start()
        self.wait_ready()

    def close(self) -> None:
        self._conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()

    # ---------------------------------------------------------------------------------------- interface
    @property
    def profile(self):
        from model.profile import profile_from_dict

        return profile_from_dict(self.wait_ready()["profile"], "model process")

    @property
    def device(self) -> str:
        return self.wait_ready()["device"]

    @property
    def dtype(self) -> str:
        return self.wait_ready()["dtype"]

    @property
    def name(self) -> str:
        return f"local (own process):{self.wait_ready()['describe'].get('loaded')}"

    def describe(self) -> dict:
        return {**self.wait_ready()["describe"], "process": "own"}

    def _ask(self, kind: str, *arguments) -> tuple[int, queue.Queue]:
        self._alive()
        request, answers = next(self._ids), queue.Queue()
        self._pending[request] = answers
        with self._sending:
            self._conn.send((kind, request, *arguments))
        return request, answers

    def _result(self, kind: str, *arguments) -> Any:
        request, answers = self._ask(kind, *arguments)
        try:
            status, value = answers.get()
        finally:
            self._pending.pop(request, None)
        if status == "error":
            raise value
        return value

    def in_flight(self) -> int:
        """Requests the worker is answering now (a stream whose reader stopped leaves at its next token)."""
        return self._result("in_flight")

    def generate(self, conversations, options=None, keys=None) -> list[str]:
        return self._result("generate", conversations, options)

    def sample(self, conversations, options) -> list[list[str]]:
        return self._result("sample", conversations, options)

    def stream(self, conversation, options=None) -> Iterator[str]:
        request, answers = self._ask("stream", conversation, options)
        ended = False
        try:
            while True:
                status, value = answers.get()
                if status == "piece":
                    yield value
                    continue
                ended = True
                if status == "end":
                    return
                raise value
        finally:
            self._pending.pop(request, None)
            if not ended:  # the reader stopped early (the student pressed stop): stop generating too
                try:
                    with self._sending:
                        self._conn.send(("cancel", request))
                except OSError:
                    pass  # the worker is gone; nothing left to stop
