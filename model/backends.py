"""Two ways to run the tutor's model behind one interface: in this process with transformers (LocalBackend),
or on an OpenAI-compatible chat-completions server such as `vllm serve` or `transformers serve`
(OpenAIBackend). Both take the chat messages of model.prompting and return text, batched or streamed.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Protocol

from model.generation import GenerationOptions, generate, stream
from model.images import ImageOptions, image_to_data_url, load_image


class Backend(Protocol):
    name: str

    def generate(self, conversations: list[list[dict]], options: GenerationOptions | None = None) -> list[str]: ...

    def stream(self, conversation: list[dict], options: GenerationOptions | None = None) -> Iterator[str]: ...


class BackendError(RuntimeError):
    """The backend could not produce an answer; the message names the server or model and what to check."""


class LocalBackend:
    """A model loaded in this process (model.loading.load_model)."""

    def __init__(self, loaded, image_options: ImageOptions | None = None, batch_size: int = 8):
        self.loaded = loaded
        self.image_options = image_options or loaded.image_options or ImageOptions()
        self.batch_size = batch_size
        self.name = f"local:{loaded.describe()}"

    @classmethod
    def load(cls, model=None, adapter=None, device="auto", dtype="auto", **kwargs) -> "LocalBackend":
        from model.loading import load_model

        image_options = kwargs.pop("image_options", None)
        batch_size = kwargs.pop("batch_size", 8)
        return cls(load_model(model, adapter=adapter, device=device, dtype=dtype, **kwargs), image_options, batch_size)

    def generate(self, conversations, options=None):
        return generate(self.loaded, conversations, options, self.image_options, self.batch_size)

    def stream(self, conversation, options=None):
        return stream(self.loaded, conversation, options, self.image_options)


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
    ):
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.image_options = image_options or ImageOptions()
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

    def request_body(self, conversation, options: GenerationOptions | None, streaming: bool) -> dict:
        options = options or GenerationOptions()
        body = {
            "model": self.model,
            "messages": self.to_openai_messages(conversation),
            "max_tokens": options.max_new_tokens,
            "stream": streaming,
        }
        if options.do_sample:
            body.update(temperature=options.temperature, top_p=options.top_p)
            if options.top_k:
                body["top_k"] = options.top_k  # vLLM extension; OpenAI itself ignores unknown sampling keys
        else:
            body["temperature"] = 0.0  # greedy on vLLM and transformers serve
        if options.seed is not None:
            body["seed"] = options.seed
        if options.repetition_penalty is not None:
            body["repetition_penalty"] = options.repetition_penalty  # vLLM extension
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

    def generate(self, conversations, options=None):
        # One request per conversation, sent concurrently: the server batches them (vLLM: continuous batching).
        if len(conversations) <= 1 or self.max_concurrency <= 1:
            return [self._complete(c, options) for c in conversations]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._complete(c, options), conversations))

    def stream(self, conversation, options=None):
        body = self.request_body(conversation, options, streaming=True)
        response = self._post(body)
        return _sse_text(response, self.name)


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
