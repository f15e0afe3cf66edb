"""Which model answers: the embedded demo model by default, a local checkpoint (+ LoRA adapter), or an
OpenAI-compatible server (vLLM), opened by model.backends.open_backend. The app talks to a `Tutor`: `.identity`
for the About tab and feedback, `.stream(question, choices, image, bank)` for the text, prompted by
model.prompting.problem_prompt with the checkpoint's serving profile, exactly as it was trained.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger("app")

REPO = Path(__file__).resolve().parents[1]
# The small model trained on the synthetic curriculum and shipped with the repository (DESIGN.md, "Two tiers").
DEMO_MODEL_DIR = REPO / "demo_model"

DEMO_NOTE = (
    "This is the embedded demo model: a small Qwen2.5-VL-shaped model (2.4M parameters) trained from scratch in "
    "27 minutes on 2 CPU cores on the synthetic geometry curriculum (angles with parallel lines, triangles, "
    "isosceles and right triangles, circles, polygons, simple trigonometry). On the curriculum's test problems "
    "the tutor's answer (its theorem steps, executed by the checker) is right about 87% of the time for "
    "familiar problems and 88% with unseen letters and wordings, but only about 30% when theorems are chained "
    "in new ways and 55% with unusual numbers; it cannot do arithmetic itself, so trust the checker's values, "
    "not its Answer line. Questions unlike the curriculum's get nonsense. For real problems run the "
    "Theorem-SFT Qwen2.5-VL-7B (see below)."
)
RANDOM_MODEL_WARNING = (
    "No trained demo model was found at {path}, so the app is serving a tiny model with RANDOM weights: its output "
    "is noise. It only shows that the app works. Put the trained demo checkpoint at {path} (the lead ships it "
    "there), or start with --model DIR."
)


@dataclass
class ServingConfig:
    model: str | None = None  # None: the embedded demo model
    adapter: str | None = None
    backend: str = "local"  # "local" (transformers) or "openai" (OpenAI-compatible server, e.g. vLLM)
    base_url: str | None = None
    api_key: str | None = None
    device: str = "auto"
    max_new_tokens: int | None = None  # None: as the checkpoint was trained (its serving profile)
    # Folder whose serving_profile.json describes the model (default: the adapter's, else the model's; a served
    # model name has none, so an openai backend needs it to prompt as trained).
    profile: str | None = None
    # Chains per question: the first is streamed (the profile's greedy decoding), the other samples - 1 are
    # sampled in one batch and model.selection picks the one the checker trusts (1: the first chain alone).
    samples: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = 0
    # local backend: the model in a child process (model.worker), so that the page starts and stays responsive
    # while the model loads and generates on another core; False keeps it in this process (tests, benches)
    own_process: bool = False


class Tutor:
    """One model behind the app: a backend (model.backends) and the serving profile it is prompted with."""

    def __init__(self, backend, identity: dict, profile=None, options=None, num_samples: int = 1,
                 sample_options=None):
        self.backend = backend
        self.identity = identity
        self.profile = profile or backend.profile
        self.options = options or self.profile.generation_options()
        # how many chains a question gets (the streamed one included) and how the others are sampled
        self.num_samples = max(1, int(num_samples))
        self.sample_options = sample_options

    def prompt(self, question: str, choices=None, image=None, bank=None):
        """The problem as the model sees it (model.prompting.problem_prompt, the trainer's and evaluator's too)."""
        from model.prompting import problem_prompt

        return problem_prompt(question, choices, image, bank, self.profile)

    def stream(self, question: str, choices=None, image=None, bank=None) -> Iterator[str]:
        """Text increments of the model's answer, with the student's point names restored."""
        prompt = self.prompt(question, choices, image, bank)
        yield from prompt.renaming.restore_stream(self.backend.stream(prompt.messages, self.options))

    def sample(self, question: str, choices=None, image=None, bank=None, n: int = 1) -> list[str]:
        """n more chains for the same prompt, sampled in one batch (one request with n on a server)."""
        if n < 1:
            return []
        prompt = self.prompt(question, choices, image, bank)
        options = sampling_options(self.options, n, self.sample_options)
        return [prompt.renaming.restore(text) for text in self.backend.sample([prompt.messages], options)[0]]


def sampling_options(greedy, n: int, settings: dict | None = None):
    """The greedy options turned into n samples in one batch (temperature, top_p, seed from `settings`)."""
    import dataclasses

    settings = settings or {}
    return dataclasses.replace(greedy, do_sample=True, num_samples=n, temperature=settings.get("temperature", 0.7),
                               top_p=settings.get("top_p", 0.95), top_k=0, seed=settings.get("seed", 0))


def tiny_fallback_dir() -> Path:
    from theorem_bank.store import cache_dir  # the project's one cache location ($THEOREM_TUTOR_CACHE)

    return cache_dir() / "tiny-random-model"


_build_lock = threading.Lock()


def resolve_model(config: ServingConfig) -> tuple[str, dict]:
    """The model path to load and what to tell the student about it (demo / random fallback)."""
    if config.model:
        return config.model, {"demo": False}
    if (DEMO_MODEL_DIR / "config.json").is_file():
        return str(DEMO_MODEL_DIR), {"demo": True, "demo_note": DEMO_NOTE}
    warning = RANDOM_MODEL_WARNING.format(path=DEMO_MODEL_DIR)
    out = tiny_fallback_dir()
    with _build_lock:
        if not (out / "config.json").is_file():
            from model.tiny import build_tiny_checkpoint

            build_tiny_checkpoint(out, seed=0)
    return str(out), {"demo": True, "demo_note": DEMO_NOTE, "warning": warning, "random": True}


def cheap_to_resolve(config: ServingConfig) -> bool:
    """Whether naming the model costs nothing (no random fallback checkpoint to build first)."""
    return bool(config.model) or config.backend != "local" or (DEMO_MODEL_DIR / "config.json").is_file()


def start_backend(config: ServingConfig):
    """The backend the config names, opened: for a local model in its own process this returns while the
    process loads (its `profile` waits), so a caller can start it before its own slow imports."""
    from model.backends import BackendError, open_backend

    if config.backend not in ("local", "openai"):
        raise BackendError(f"unknown --backend {config.backend!r}; use local or openai")
    if config.backend == "openai":
        path, device = config.model, config.device
    else:
        path, extra = resolve_model(config)
        # The demo model is small: CPU answers fast and leaves a GPU (if any) to other work.
        device = "cpu" if extra.get("demo") and config.device == "auto" else config.device
    try:
        return open_backend(config.backend, model=path, adapter=config.adapter, base_url=config.base_url,
                            api_key=config.api_key, profile_dir=config.profile, device=device,
                            own_process=config.own_process and config.backend == "local")
    except BackendError as err:
        raise BackendError(f"--backend {config.backend}: {err}") from None


def open_tutor(config: ServingConfig, backend=None) -> Tutor:
    """Load the model the config names (nothing named: the embedded demo model on CPU); `backend`: the one
    start_backend already opened for this config."""
    from model.backends import BackendError

    backend = backend or start_backend(config)
    try:
        profile = backend.profile  # a model in its own process: waits for it to load
    except BackendError as err:
        raise BackendError(f"--backend {config.backend}: {err}") from None
    if config.max_new_tokens:
        profile = profile.replace(max_new_tokens=config.max_new_tokens)
    if config.backend == "openai":
        identity = {"model": config.model, "adapter": config.adapter,
                    "backend": f"openai-compatible ({config.base_url})", "device": "remote", "demo": False}
    else:
        path, extra = resolve_model(config)  # start_backend resolved it too: a file check the second time
        if extra.get("warning"):
            log.warning(extra["warning"])
        if hasattr(backend, "loaded"):
            device, dtype, where = backend.loaded.device, backend.loaded.dtype, "local (transformers)"
        else:
            device, dtype, where = backend.device, backend.dtype, "local (transformers, own process)"
        identity = {"model": path, "adapter": config.adapter, "backend": where,
                    "device": f"{device} ({str(dtype).removeprefix('torch.')})", **extra}
    return Tutor(backend, identity, profile=profile, num_samples=config.samples,
                 sample_options={"temperature": config.temperature, "top_p": config.top_p, "seed": config.seed})


class Loading:
    """Something slow to open (the model, the theorem bank), opened on a background thread so the server answers
    its first page while it loads. `get()` waits for it and raises the loader's error, if it failed; `preview` is
    what is known before it is ready (the tutor's identity, for the page's notice)."""

    def __init__(self, name: str, load, preview=None):
        self.name, self.preview = name, preview
        self._load, self._value, self._error = load, None, None
        self._done = threading.Event()

    def start(self, then: "Loading | None" = None) -> "Loading":
        """Load on a new thread; `then` loads after it on the same thread."""
        def run():
            self._run()
            if then is not None:
                then._run()

        threading.Thread(target=run, daemon=True, name=f"load-{self.name}").start()
        return self

    def _run(self) -> None:
        try:
            self._value = self._load()
        except BaseException as err:  # SystemExit too: a bad --model must reach the solve, not kill the thread silently
            log.exception("loading the %s failed", self.name)
            self._error = err
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self, timeout: float | None = None):
        if not self._done.wait(timeout):
            raise TimeoutError(f"the {self.name} is still loading")
        if self._error is not None:
            raise RuntimeError(f"loading the {self.name} failed: {self._error}") from self._error
        return self._value


def ready(thing):
    """The object itself, waiting for it first when it is still `Loading`."""
    return thing.get() if isinstance(thing, Loading) else thing


def expected_identity(config: ServingConfig) -> dict:
    """What the page says about the model before it is loaded (demo or not, the random-weights warning), without
    importing torch; the full identity (device, dtype) replaces it once the model is up."""
    if config.backend == "openai" or config.model:
        return {"model": config.model, "adapter": config.adapter, "demo": False}
    if (DEMO_MODEL_DIR / "config.json").is_file():
        return {"model": str(DEMO_MODEL_DIR), "demo": True, "demo_note": DEMO_NOTE}
    return {"model": str(tiny_fallback_dir()), "demo": True, "demo_note": DEMO_NOTE, "random": True,
            "warning": RANDOM_MODEL_WARNING.format(path=DEMO_MODEL_DIR)}
