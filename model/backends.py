"""Every way to run the tutor's model, behind one interface and one factory, `open_backend(kind, ...)`:

- `local`: a checkpoint loaded in this process with transformers (LocalBackend);
- `openai`: an OpenAI-compatible chat-completions server such as `vllm serve` or `transformers serve`;
- `vllm`: vLLM's offline engine in this process (GPU; a LoRA adapter through LoRARequest);
- `replay`: outputs recorded elsewhere (JSONL of {"key" or "id", "output"}), returned as if generated here.

All take the chat messages of model.prompting.problem_messages and return text; each carries the serving profile
(model.profile) of the checkpoint it runs, whose decoding is used when a call names no options.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Protocol

from model.generation import GenerationOptions, generate, sample, stream
from model.images import ImageOptions, image_to_data_url, load_image
from model.profile import ServingProfile, default_profile, load_profile

BACKENDS = ("local", "openai", "vllm", "replay")


class Backend(Protocol):
    name: str
    profile: ServingProfile

    # `keys` name the problems (only the replay backend needs them, to find each recorded output).
    def generate(self, conversations: list[list[dict]], options: GenerationOptions | None = None,
                 keys: list[str] | None = None) -> list[str]: ...

    def stream(self, conversation: list[dict], options: GenerationOptions | None = None) -> Iterator[str]: ...


class BackendError(RuntimeError):
    """The backend could not produce an answer; the message names the server or model and what to check."""


class LocalBackend:
    """A model loaded in this process (model.loading.load_model)."""

    def __init__(self, loaded, image_options: ImageOptions | None = None, batch_size: int = 8,
                 scheduler: str = "continuous"):
        self.loaded = loaded
        self.profile = loaded.profile or default_profile()
        self.image_options = image_options or self.profile.image_options()
        self.batch_size = batch_size
        self.scheduler = scheduler  # model.generation.SCHEDULERS: how greedy batches are filled
        self.name = f"local:{loaded.describe()}"

    @classmethod
    def load(cls, model=None, adapter=None, device="auto", dtype="auto", **kwargs) -> "LocalBackend":
        from model.loading import load_model

        image_options = kwargs.pop("image_options", None)
        batch_size = kwargs.pop("batch_size", 8)
        return cls(load_model(model, adapter=adapter, device=device, dtype=dtype, **kwargs), image_options, batch_size)

    def describe(self) -> dict:
        return {"backend": "local", "loaded": self.loaded.describe(), "min_pixels": self.image_options.min_pixels,
                "max_pixels": self.image_options.max_pixels, "scheduler": self.scheduler}

    def generate(self, conversations, options=None, keys=None):
        return generate(self.loaded, conversations, options or self.profile.generation_options(), self.image_options,
                        self.batch_size, self.scheduler)

    def stream(self, conversation, options=None):
        return stream(self.loaded, conversation, options or self.profile.generation_options(), self.image_options)

    def sample(self, conversations, options: GenerationOptions) -> list[list[str]]:
        """options.num_samples texts per conversation, in one batch (num_return_sequences)."""
        return sample(self.loaded, conversations, options, self.image_options, self.batch_size)


class OpenAIBackend:
    """An OpenAI-compatible /v1/chat/completions server. Images travel as base64 PNG data URLs, sized by the same
    code as the local path, so a server that keeps 28-px-aligned images as they are sees the same pixels."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        image_options: ImageOptions | None = None,
        timeout: float = 300.0,
        max_concurrency: int = 8,
        profile: ServingProfile | None = None,
        server: str = "vllm",
    ):
        # "vllm" (and SGLang) honour repetition_penalty and top_k as body extensions; "transformers" (transformers
        # serve) ignores both, and takes the penalty as frequency_penalty (its repetition_penalty = 1 + value).
        if server not in ("vllm", "transformers"):
            raise ValueError(f"server={server!r}: use 'vllm' (also SGLang) or 'transformers' (transformers serve)")
        self.server = server
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.profile = profile or default_profile()
        self.image_options = image_options or self.profile.image_options()
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.name = f"openai:{self.base_url} ({model})"

    # ---- request building

    def to_openai_messages(self, conversation: list[dict]) -> list[dict]:
        """Chat messages with images turned into image_url parts and text-only turns into plain strings."""
        converted = []
        for message in conversation:
            content = message.get("content")
            if isinstance(content, str):
                converted.append({"role": message["role"], "content": content})
                continue
            parts = []
            for part in content:
                if part.get("type") == "image" or "image" in part or "image_url" in part:
                    source = part.get("image")
                    if source is None:
                        url = part["image_url"]
                        source = url.get("url") if isinstance(url, dict) else url
                    image = load_image(source, self.image_options)
                    parts.append({"type": "image_url", "image_url": {"url": image_to_data_url(image)}})
                elif "text" in part:
                    parts.append({"type": "text", "text": part["text"]})
            if all(p["type"] == "text" for p in parts):
                # Some servers accept only strings for system turns; text-only turns are sent as one string.
                converted.append({"role": message["role"], "content": "".join(p["text"] for p in parts)})
            else:
                converted.append({"role": message["role"], "content": parts})
        return converted

    def describe(self) -> dict:
        return {"backend": "openai", "server": self.base_url, "model": self.model}

    def request_body(self, conversation, options: GenerationOptions | None, streaming: bool) -> dict:
        options = options or self.profile.generation_options()
        body = {
            "model": self.model,
            "messages": self.to_openai_messages(conversation),
            "max_tokens": options.max_new_tokens,
            "stream": streaming,
        }
        if options.do_sample:
            body.update(temperature=options.temperature, top_p=options.top_p)
            if options.top_k and self.server == "vllm":
                body["top_k"] = options.top_k  # vLLM extension; transformers serve has no top_k
        else:
            body["temperature"] = 0.0  # greedy on vLLM and transformers serve
        if options.seed is not None:
            body["seed"] = options.seed
        if options.repetition_penalty is not None:
            if self.server == "transformers":
                body["frequency_penalty"] = options.repetition_penalty - 1.0  # what transformers serve reads
            else:
                body["repetition_penalty"] = options.repetition_penalty  # vLLM extension (its frequency_penalty
                # is OpenAI's additive one, a different knob)
        if options.num_samples > 1:
            body["n"] = options.num_samples  # N chains from one request: the server samples them as one batch
        return body

    # ---- transport

    def _post(self, body: dict):
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise BackendError(
                f"{self.name}: HTTP {exc.code} from /chat/completions: {detail}. Check the model name "
                f"(the server's /v1/models) and that it serves a vision-language chat model"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BackendError(
                f"cannot reach an OpenAI-compatible server at {self.base_url}: {exc}. Start one, e.g. "
                f"`vllm serve {self.model}` or `transformers serve {self.model}`, or fix --base-url"
            ) from exc

    def _complete(self, conversation, options) -> str:
        with self._post(self.request_body(conversation, options, streaming=False)) as response:
            payload = json.loads(response.read().decode("utf-8"))
        try:
            return strip_control_tokens(payload["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.name}: unexpected response shape: {str(payload)[:300]}") from exc

    def generate(self, conversations, options=None, keys=None):
        # One request per conversation, sent concurrently: the server batches them (vLLM: continuous batching).
        if len(conversations) <= 1 or self.max_concurrency <= 1:
            return [self._complete(c, options) for c in conversations]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._complete(c, options), conversations))

    def sample(self, conversations, options: GenerationOptions) -> list[list[str]]:
        """options.num_samples texts per conversation: one request each with n = num_samples."""
        def one(conversation):
            with self._post(self.request_body(conversation, options, streaming=False)) as response:
                payload = json.loads(response.read().decode("utf-8"))
            try:
                choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
                texts = [strip_control_tokens(c["message"]["content"] or "") for c in choices]
            except (KeyError, IndexError, TypeError) as exc:
                raise BackendError(f"{self.name}: unexpected response shape: {str(payload)[:300]}") from exc
            if len(texts) != options.num_samples:
                raise BackendError(f"{self.name}: asked for n={options.num_samples} completions, got {len(texts)}; "
                                   "the server may not support n > 1 (vLLM does)")
            return texts

        if len(conversations) <= 1 or self.max_concurrency <= 1:
            return [one(c) for c in conversations]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(one, conversations))

    def stream(self, conversation, options=None):
        body = self.request_body(conversation, options, streaming=True)
        response = self._post(body)
        return _sse_text(response, self.name)


def vllm_engine_args(model: str, adapter: str | None, image_options: ImageOptions,
                     max_model_len: int = 8192) -> tuple[dict, str | None]:
    """The keyword arguments of vllm.LLM for a checkpoint, and the adapter to request (or None).

    `model` may be an adapter folder alone: its base comes from adapter_config.json. vLLM refuses adapters above
    max_lora_rank (16 by default), so the rank is read from the adapter (ours are r=64). The image bounds go to the
    Qwen2.5-VL processor as mm_processor_kwargs, and max_model_len caps the KV cache at what a prompt with one image
    and an answer need (the 7B's config allows 128k)."""
    from pathlib import Path

    folder = Path(model)
    if adapter is None and (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        adapter, model = model, None
    kwargs: dict = {"limit_mm_per_prompt": {"image": 1}, "max_model_len": max_model_len,
                    "mm_processor_kwargs": {"min_pixels": image_options.min_pixels,
                                            "max_pixels": image_options.max_pixels}}
    if adapter is not None:
        adapter_config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
        model = model or adapter_config["base_model_name_or_path"]
        kwargs.update(enable_lora=True, max_lora_rank=int(adapter_config.get("r", 16)), max_loras=1)
    kwargs["model"] = model
    return kwargs, adapter


class VLLMBackend:
    """vLLM's offline engine in this process: the throughput path on GPUs. Every vLLM setting lives here."""

    def __init__(self, model: str, adapter: str | None = None, profile: ServingProfile | None = None):
        try:
            from vllm import LLM
        except ImportError as err:
            raise BackendError(f"the vllm backend needs the vllm package ({err}); install it on a GPU machine "
                               "or use the local or openai backend") from None
        self.profile = profile or default_profile()
        self.engine_args, adapter = vllm_engine_args(model, adapter, self.profile.image_options())
        self.llm = LLM(**self.engine_args)
        model = self.engine_args["model"]
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, adapter)
        self.image_options = self.profile.image_options()
        self.name = f"vllm:{model}" + (f" + adapter {adapter}" if adapter else "")

    def describe(self) -> dict:
        return {"backend": "vllm", "model": self.name}

    def sampling_params(self, options: GenerationOptions | None):
        from vllm import SamplingParams

        options = options or self.profile.generation_options()
        sampling = dict(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k or -1) \
            if options.do_sample else dict(temperature=0.0)
        return SamplingParams(max_tokens=options.max_new_tokens, seed=options.seed, n=options.num_samples,
                              repetition_penalty=options.repetition_penalty or 1.0, **sampling)

    def messages(self, conversation: list[dict]) -> list[dict]:
        """Content-list messages with images as data URLs, sized as on the local path (what vLLM's chat takes)."""
        converted = []
        for message in conversation:
            parts = []
            for part in message["content"]:
                if part.get("type") == "image":
                    image = load_image(part["image"], self.image_options)
                    parts.append({"type": "image_url", "image_url": {"url": image_to_data_url(image)}})
                else:
                    parts.append(part)
            converted.append({"role": message["role"], "content": parts})
        return converted

    def generate(self, conversations, options=None, keys=None):
        outputs = self.llm.chat([self.messages(c) for c in conversations], self.sampling_params(options),
                                lora_request=self.lora, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]

    def sample(self, conversations, options: GenerationOptions) -> list[list[str]]:
        outputs = self.llm.chat([self.messages(c) for c in conversations], self.sampling_params(options),
                                lora_request=self.lora, use_tqdm=False)
        return [[c.text for c in o.outputs] for o in outputs]

    def stream(self, conversation, options=None):
        yield from self.generate([conversation], options)  # the offline engine has no token stream


class ReplayBackend:
    """Outputs made elsewhere, graded as if generated here. A missing key is an error, not an empty answer."""

    def __init__(self, path: str | os.PathLike, profile: ServingProfile | None = None):
        from pathlib import Path

        self.path = Path(path)
        self.profile = profile or default_profile()
        self.name = f"replay:{self.path}"
        self.outputs: dict[str, str] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise BackendError(f"cannot read replay outputs {self.path}: {err}") from None
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.outputs[str(row.get("key") or row["id"])] = str(row["output"])
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                raise BackendError(f"{self.path}:{line_no}: expected {{\"id\" or \"key\", \"output\"}} ({err})") from None

    def describe(self) -> dict:
        return {"backend": "replay", "outputs": str(self.path)}

    def generate(self, conversations, options=None, keys=None):
        if keys is None or len(keys) != len(conversations):
            raise BackendError("the replay backend needs the key of every conversation (generate(..., keys=...))")
        missing = [key for key in keys if key not in self.outputs]
        if missing:
            raise BackendError(f"{self.path} has no output for {missing[0]!r}; every evaluated problem needs one")
        return [self.outputs[key] for key in keys]

    def stream(self, conversation, options=None):
        raise BackendError("the replay backend answers known problems by key; it cannot stream a new one")


def open_backend(kind: str = "local", *, model: str | None = None, adapter: str | None = None,
                 base_url: str | None = None, api_key: str | None = None, outputs: str | None = None,
                 profile: ServingProfile | None = None, profile_dir: str | None = None, device: str = "auto",
                 batch_size: int = 8, image_options: ImageOptions | None = None, own_process: bool = False,
                 **load_kwargs) -> Backend:
    """THE factory for every backend. The profile is, in order: `profile` as given, the serving_profile.json in
    `profile_dir`, the checkpoint's own (local: read by model.loading; vllm: the model or adapter folder), else
    the documented default (model.profile). `own_process` (local only): the model lives in a child process
    (model.worker), for a server that must stay responsive while it loads and generates."""
    if profile is None and profile_dir is not None:
        profile = load_profile(profile_dir)
    if kind == "local":
        from model.loading import load_model

        if not model and not adapter:
            raise BackendError("the local backend needs a model (checkpoint folder or hub id) or an adapter folder")
        if own_process:  # model.worker: loads in a child process; this returns at once
            from functools import partial

            from model.worker import WorkerBackend

            return WorkerBackend(partial(open_backend, "local", model=model, adapter=adapter, profile=profile,
                                         device=device, batch_size=batch_size, image_options=image_options,
                                         **load_kwargs), error_type=BackendError)
        loaded = load_model(model or None, adapter=adapter, device=device, **load_kwargs)
        if profile is not None:
            loaded.profile = profile
        return LocalBackend(loaded, image_options, batch_size)
    if kind == "openai":
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise BackendError("the openai backend needs a server URL (--base-url, e.g. http://127.0.0.1:8000/v1 for "
                               "`vllm serve`, or $OPENAI_BASE_URL)")
        if not model:
            raise BackendError("the openai backend needs the model name the server serves (--model)")
        return OpenAIBackend(url, model, api_key=api_key, image_options=image_options, max_concurrency=max(1, batch_size),
                             profile=profile or _local_profile(model, adapter))
    if kind == "vllm":
        if not model:
            raise BackendError("the vllm backend needs a model (checkpoint folder or hub id)")
        return VLLMBackend(model, adapter, profile=profile or _local_profile(model, adapter))
    if kind == "replay":
        if not outputs:
            raise BackendError("the replay backend needs a file of recorded outputs (--outputs FILE.jsonl, "
                               "one {\"id\", \"output\"} per line)")
        return ReplayBackend(outputs, profile=profile or _local_profile(model, adapter))
    raise BackendError(f"unknown backend {kind!r}; choose from {', '.join(BACKENDS)}")


def _local_profile(model, adapter) -> ServingProfile:
    # A remote or recorded model named by a local checkpoint folder is served with that folder's profile.
    from model.loading import checkpoint_profile

    return checkpoint_profile(model or None, adapter)


def _sse_text(response, name: str) -> Iterator[str]:
    """Content increments from a chat-completions server-sent-event stream."""
    with response:
        for raw in response:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments and event: lines
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise BackendError(f"{name}: malformed stream event {data[:200]!r}") from exc
            if "error" in event:
                raise BackendError(f"{name}: server error during streaming: {event['error']}")
            for choice in event.get("choices", []):
                piece = strip_control_tokens((choice.get("delta") or {}).get("content") or "")
                if piece:
                    yield piece


# Servers differ in whether they skip special tokens when decoding (transformers serve keeps Qwen's
# <|box_start|> and friends); the local backend skips them. A chat-template control token is never content.
_CONTROL_TOKEN = re.compile(r"<\|[a-z_]+\|>")


def strip_control_tokens(text: str) -> str:
    return _CONTROL_TOKEN.sub("", text)
