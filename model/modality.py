"""Every forward pass runs the vision tower, image or not, so that sharded training (FSDP2, DeepSpeed ZeRO-3) issues
the same collectives in the same order on every process whatever its micro-batch holds.

Sharded weights are gathered module by module as the forward reaches them. A process whose micro-batch is text-only
skips the vision blocks while a process with an image gathers them, so their collectives no longer pair up: the job
hangs or fails with a collective mismatch. `run_vision_on_text_batches` makes a text-only forward run the tower on a
dummy image of one merged token at the place where a real image runs, and adds its output times zero to the input
embeddings: the loss and every gradient are exactly those of the text-only batch, and every process touches the same
parameters in the same order.
"""

from __future__ import annotations

import torch


def _multimodal_core(model):
    """The Qwen2_5_VLModel inside `model` (itself, a ForConditionalGeneration, or a PEFT wrapper)."""
    for module in model.modules():
        if hasattr(module, "visual") and hasattr(module, "language_model") and hasattr(module, "get_input_embeddings"):
            return module
    raise TypeError(f"{type(model).__name__} holds no Qwen2.5-VL core (a module with .visual and .language_model)")


def dummy_image(visual) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero pixels and the grid of the smallest image the tower takes: one merged token (merge x merge patches)."""
    config = visual.config
    merge = config.spatial_merge_size
    patch_width = config.in_channels * config.temporal_patch_size * config.patch_size**2
    pixels = torch.zeros(merge * merge, patch_width)
    grid = torch.tensor([[1, merge, merge]], dtype=torch.long)
    return pixels, grid


def run_vision_on_text_batches(model):
    """Install the hooks on `model`; returns a handle (`.remove()` undoes it) that counts the dummy runs.

    The dummy pass runs where a real image's pass runs: after the token embedding, before the first decoder layer
    (a hook on the language model, noting in a hook on the multimodal core whether this forward brought an image).
    The order matters: ZeRO-3 checks that every rank calls its modules in the same order."""
    core = _multimodal_core(model)
    pixels, grid = dummy_image(core.visual)
    state = {"needs_dummy": False}

    def note_media(module, args, kwargs):
        has_media = any(kwargs.get(k) is not None for k in ("pixel_values", "pixel_values_videos", "mm_encoder_outputs"))
        # Positional calls are not the trainer's; inference mode is model.generation's decoding, never sharded
        # (evaluation under FSDP/ZeRO-3 computes eval loss only, under no_grad, and keeps the dummy pass).
        state["needs_dummy"] = not (has_media or args or torch.is_inference_mode_enabled())

    def add_dummy_image(module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if not state["needs_dummy"] or embeds is None:
            return None
        state["needs_dummy"] = False
        image = core.visual(pixels.to(embeds.device), grid_thw=grid.to(embeds.device)).pooler_output
        # Times zero: exactly the text-only result, but the tower's parameters are part of this step on every rank.
        kwargs["inputs_embeds"] = embeds + 0.0 * image.sum().to(embeds.dtype)
        handle.dummy_runs += 1
        return args, kwargs

    handle = _Hooks([core.register_forward_pre_hook(note_media, with_kwargs=True),
                     core.language_model.register_forward_pre_hook(add_dummy_image, with_kwargs=True)])
    return handle


class _Hooks:
    def __init__(self, handles):
        self.handles = handles
        self.dummy_runs = 0

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def checkpoint_language_model(model, train_vision: bool = False) -> None:
    """Gradient checkpointing for training, without back-propagating (or recomputing) a frozen vision tower.

    transformers' checkpointing calls enable_input_require_grads, which marks the output of every sub-model's input
    embedding as requiring grad, the vision tower's patch_embed included: with a frozen tower that sends every step's
    backward through all its blocks (32 on the 7B), recomputing each. Here only the language model's token
    embeddings are so marked (so LoRA on a frozen base still gets gradients), and a frozen tower is not checkpointed.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if train_vision:
        return
    core = _multimodal_core(base)
    for handle in getattr(base, "_require_grads_hooks", []):
        handle.remove()

    def require_grads(module, inputs, output):
        output.requires_grad_(True)

    base._require_grads_hooks = [core.get_input_embeddings().register_forward_hook(require_grads)]
    base._require_grads_hook = base._require_grads_hooks[0]
    for module in core.visual.modules():
        if hasattr(module, "gradient_checkpointing"):
            module.gradient_checkpointing = False
