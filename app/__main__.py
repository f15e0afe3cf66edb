"""`python -m app`: serve the tutor.

    python -m app                                           # embedded demo model on CPU, http://127.0.0.1:7860
    python -m app --model Qwen/Qwen2.5-VL-7B-Instruct --adapter ADAPTER_DIR --device cuda
    python -m app --backend openai --base-url http://127.0.0.1:8000/v1 --model theorem-sft
    python -m app --host 0.0.0.0 --auth teacher:secret      # reachable on the network, behind a password
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# Chains per question (see --samples): chosen by measurement on the curriculum's test splits (README, Figures).
DEFAULT_SAMPLES = 4


class _DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once: not where its help already says it, and not for None or an off switch
    (which would also print a secret such as $OPENAI_API_KEY taken from the environment)."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app", description="Serve the theorem tutor (Gradio).",
                                formatter_class=_DefaultsOnce)
    m = p.add_argument_group("model")
    m.add_argument("--model", default=None,
                   help="checkpoint dir or hub id (openai backend: the served model name); default: the embedded "
                        "demo model")
    m.add_argument("--adapter", default=None, help="PEFT LoRA adapter dir applied on top of --model")
    m.add_argument("--backend", choices=["local", "openai"], default="local",
                   help="local transformers, or an OpenAI-compatible server such as vLLM")
    m.add_argument("--base-url", default=None, help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1")
    m.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"),
                   help="key for the OpenAI-compatible server (default: $OPENAI_API_KEY)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    m.add_argument("--max-new-tokens", type=int, default=None,
                   help="answer length budget (default: as the checkpoint was trained, its serving profile)")
    m.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help="solutions per question: the first streams, the rest are sampled in one batch, and the one "
                        "whose steps are grounded and checked (then the most agreed) is shown (default: %(default)s, "
                        "chosen by measurement, see README)")
    m.add_argument("--profile", default=None,
                   help="folder whose serving_profile.json to prompt with (default: the adapter's, else the "
                        "model's; give it with --backend openai so a served model is prompted as trained)")
    m.add_argument("--in-process", action="store_true",
                   help="load a local model into the web server's own process instead of a child process (the "
                        "child loads on another core while the page starts, and keeps generation off the page's "
                        "interpreter lock)")
    m.add_argument("--retrieval", choices=["hybrid", "bm25"], default="hybrid",
                   help="theorem retrieval: BM25 + dense embeddings, or BM25 alone (faster start, no encoder)")
    s = p.add_argument_group("serving")
    s.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the app on the network")
    s.add_argument("--port", type=int, default=7860, help="port to serve on")
    s.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require this login")
    s.add_argument("--share", action="store_true", help="create a public gradio.live link (off unless given)")
    s.add_argument("--concurrency", type=int, default=1,
                   help="solutions generated at once (1 for one local GPU model; more for a vLLM server)")
    s.add_argument("--max-queue", type=int, default=16,
                   help="requests allowed to wait; beyond this students get a 'busy, try again' message")
    s.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload accepted")
    s.add_argument("--feedback-db", default=None, help="SQLite file for feedback (default: $THEOREM_TUTOR_FEEDBACK_DB, else feedback.sqlite in "
                        "$THEOREM_TUTOR_CACHE, ~/.cache/theorem-tutor)")
    s.add_argument("--no-feedback", action="store_true", help="do not store feedback (the thumbs are switched off)")
    args = p.parse_args(argv)
    if args.auth is not None and (":" not in args.auth or not args.auth.split(":", 1)[0] or not args.auth.split(":", 1)[1]):
        p.error("--auth must be USER:PASSWORD with both parts non-empty")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.max_queue < 1:
        p.error("--max-queue must be at least 1")
    if args.max_upload_mb <= 0:
        p.error("--max-upload-mb must be positive")
    return args


def build_app(args: argparse.Namespace):
    """Everything `main` serves, without launching: (blocks, launch kwargs). Tests launch it themselves.

    The model and the theorem bank open on a background thread (app.serving.Loading), so the server answers its
    first page in seconds; a Solve that comes earlier shows "loading the model" and waits for them. A local model
    gets its own process (model.worker), started here before the web framework is imported, so that the two load
    on two cores at once."""
    from app import serving

    config = serving.ServingConfig(
        model=args.model, adapter=args.adapter, backend=args.backend, base_url=args.base_url,
        api_key=args.api_key, device=args.device, max_new_tokens=args.max_new_tokens, profile=args.profile,
        samples=args.samples, own_process=not args.in_process)
    started = serving.start_backend(config) if config.own_process and serving.cheap_to_resolve(config) else None

    from app import examples as gallery
    from app import feedback, ui

    items = gallery.load_gallery()
    bank = serving.Loading("theorem bank", lambda: _open_bank(args))
    tutor = serving.Loading("model", lambda: _open_tutor(serving, config, bank, items, started),
                            preview=serving.expected_identity(config))
    # One loader thread, not two: on a small CPU two would only contend; the bank (needed by the page's lists)
    # opens first, then the model, then the warm-up of what the first solve would otherwise pay for.
    bank.start(then=tutor)
    store = None if args.no_feedback else feedback.FeedbackStore(args.feedback_db)
    blocks = ui.build_ui(tutor, bank, store, items)
    blocks.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    return blocks, launch_kwargs(args)


def _open_bank(args: argparse.Namespace):
    from theorem_bank import open_bank

    return open_bank(dense=False if args.retrieval == "bm25" else None)


def _open_tutor(serving, config, bank, items, started=None):
    # Warm up the sentence encoder and the checker before the tutor counts as ready: the first student's solve
    # waits for them either way, and they are what its first request would otherwise pay for (seconds each).
    # First, so that they run while a model in its own process is still loading.
    try:
        _warm_up(bank.get(), items[0].solution if items else "")
    except RuntimeError:  # the bank's own error reaches the student at the solve
        pass
    return serving.open_tutor(config, started)


def _warm_up(bank, solution: str) -> None:
    from app import handlers

    from model import sandbox

    try:
        bank.retrieve("warm up the retriever", k=1)
        handlers.warm_up(bank, solution)
        sandbox.shared().warm()   # the grader's math-verify worker (model.sandbox): seconds to start
    except Exception:  # a failed warm-up only means the first request is slower
        logging.getLogger("app").exception("warm-up failed")


def launch_kwargs(args: argparse.Namespace) -> dict:
    """Blocks.launch arguments: loopback unless told otherwise, no share link unless asked, upload limit."""
    from app import examples, ui

    return dict(
        server_name=args.host, server_port=args.port, share=args.share,
        auth=tuple(args.auth.split(":", 1)) if args.auth else None,
        max_file_size=int(args.max_upload_mb * 1024 * 1024),
        allowed_paths=[str(examples.EXAMPLES_DIR)],  # the gallery's diagrams, nothing else of the disk
        theme=ui.theme(), css=ui.APP_CSS, footer_links=[], ssr_mode=False,
        head=ui.head(int(args.max_upload_mb * 1024 * 1024)),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.auth:
        logging.getLogger("app").warning("binding %s without --auth: anyone on the network can use this tutor",
                                         args.host)
    from model.backends import BackendError
    from model.loading import DeviceError, ModelLoadError
    from model.profile import ProfileError

    try:
        blocks, launch = build_app(args)
    except (BackendError, ModelLoadError, DeviceError, ProfileError, FileNotFoundError) as err:
        print(f"python -m app: {err}", file=sys.stderr)  # a bad --model/--adapter/--backend: one line, no traceback
        return 2
    blocks.launch(**launch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
