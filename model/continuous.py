"""Greedy decoding with continuous batching: a chain that ends leaves the batch at once and the next
conversation takes its slot.

`model.generate` on a left-padded batch decodes until the batch's longest chain ends, so every shorter chain
costs padded steps (on the synthetic curriculum, 1,241 batched steps where 774 would do). Here each of the
`slots` rows carries its own KV cache rows, mask and 3D rope positions; a newcomer is prefilled (image included)
and joined to the running cache, left-padded to a common length, and leading columns that no row needs any more
are trimmed. Greedy choices match `model.generate` one conversation at a time: the same positions (rope deltas
from the model's own `get_rope_index`), the same masks, the same repetition penalty over the row's own tokens.

Only what greedy decoding needs is here; sampling, and checkpoints whose generation config asks for other logits
processors, stay with `model.generate` (see `supports`).
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass

# Generation-config fields that would add a logits processor or stopping rule to greedy decoding, with the
# value that means "none": a checkpoint that sets any of them otherwise is decoded by model.generate.
_NEUTRAL = {"no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "suppress_tokens": (None,),
            "begin_suppress_tokens": (None,), "min_new_tokens": (None, 0), "min_length": (None, 0),
            "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "sequence_bias": (None,),
            "encoder_repetition_penalty": (None, 1.0), "exponential_decay_length_penalty": (None,),
            "stop_strings": (None,), "max_time": (None,), "num_beams": (None, 1), "guidance_scale": (None, 1.0)}


def supports(model, options) -> bool:
    """Whether this decoder reproduces `model.generate` for these options on this model."""
    if options.do_sample or options.num_samples != 1:
        return False
    config = model.generation_config
    if any(getattr(config, name, None) not in neutral for name, neutral in _NEUTRAL.items()):
        return False
    return _vision_language_core(model) is not None


def _vision_language_core(model):
    """The Qwen2.5-VL core (it owns get_rope_index) under a PEFT wrapper or the generation head."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    core = getattr(base, "model", None)
    return core if hasattr(core, "get_rope_index") else None


@dataclass
class Finished:
    index: int          # the conversation's place in the input
    tokens: list[int]   # generated tokens, up to and including the stop token
    stopped: bool       # a stop token ended it (False: max_new_tokens cut it)


@dataclass
class _Rows:
    """The running batch: per row its conversation index, generated tokens and the tokens a repetition penalty
    looks at; the KV cache, the 2D mask over the cached columns and the last cached position, row by row."""
    indices: list[int]
    generated: list[list[int]]
    seen: list  # per row a LongTensor of token ids the penalty applies to (None when the penalty is 1)
    cache: object
    mask: object        # (rows, cached columns), 1 where a column holds a real token
    positions: object   # (4, rows, 1): the text position and the three rope positions of the last cached token

    @property
    def layers(self) -> list:
        return self.cache.layers

    def __len__(self):
        return len(self.indices)

    def join(self, other: "_Rows") -> None:
        """Append `other`'s rows, left-padding whichever cache is shorter (the mask hides the padding)."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.layers, other.layers):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)], dim=0)
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)], dim=0)
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(other.mask, width)], dim=0)
        self.positions = torch.cat([self.positions, other.positions], dim=1)
        self.indices += other.indices
        self.generated += other.generated
        self.seen += other.seen

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in order), then drop the leading columns no kept row attends to."""
        import torch

        select = torch.tensor(rows, device=self.mask.device)
        mask = self.mask.index_select(0, select)
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else mask.shape[1]
        for layer in self.layers:
            layer.keys = layer.keys.index_select(0, select)[..., start:, :]
            layer.values = layer.values.index_select(0, select)[..., start:, :]
        self.mask = mask[:, start:]
        self.positions = self.positions.index_select(1, select)
        self.indices = [self.indices[r] for r in rows]
        self.generated = [self.generated[r] for r in rows]
        self.seen = [self.seen[r] for r in rows]


def _left_pad(tensor, width: int):
    """Pad the sequence axis (dim -2 of a cache tensor, dim 1 of a 2D mask) with zeros on the left to `width`."""
    import torch

    axis = 1 if tensor.dim() == 2 else -2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)


class ContinuousDecoder:
    """Greedy decoding of many conversations with at most `slots` in the batch at once.

    `prepare(conversations)` turns conversations into the processor's left-padded batch (model.generation's
    prepare_inputs); `exclusive()` is the model's lock, taken for each forward pass so that another user of the
    same model (the app's stream) can interleave between steps."""

    def __init__(self, model, prepare, stop_ids: set[int], *, max_new_tokens: int, repetition_penalty: float = 1.0,
                 slots: int = 8, exclusive=None):
        import contextlib

        self.model = model
        self.core = _vision_language_core(model)
        self.prepare = prepare
        self.stop_ids = set(stop_ids)
        self.max_new_tokens = max_new_tokens
        self.penalty = float(repetition_penalty)
        self.slots = max(1, slots)
        self.exclusive = exclusive or contextlib.nullcontext
        params = inspect.signature(model.forward).parameters
        # transformers renamed past_key_values to cache (5.2x); older 5.x only knows the first name.
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.steps = 0  # batched decode steps taken, for benches

    def run(self, conversations: list) -> list[Finished]:
        import torch

        waiting = deque(range(len(conversations)))
        done: list[Finished] = []
        rows: _Rows | None = None
        with torch.inference_mode():
            while waiting or rows:
                free = self.slots - (len(rows) if rows else 0)
                if free and waiting:
                    chosen = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                    newcomers = self._prefill(chosen, [conversations[i] for i in chosen])
                    if rows:
                        rows.join(newcomers)
                    else:
                        rows = newcomers
                else:
                    self._step(rows)
                rows = self._retire(rows, done)
        return sorted(done, key=lambda finished: finished.index)

    # -------------------------------------------------------------------------------------------- passes
    def _prefill(self, indices: list[int], conversations: list) -> _Rows:
        """Run the newcomers' prompts (one left-padded batch) and choose each one's first token."""
        inputs = self.prepare(conversations)
        mask = inputs["attention_mask"]
        positions = self._prompt_positions(inputs)
        with self.exclusive():
            output = self.model(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
        seen = [None] * len(indices)
        if self.penalty != 1.0:
            seen = [ids[row_mask.bool()] for ids, row_mask in zip(inputs["input_ids"], mask)]
        rows = _Rows(indices=list(indices), generated=[[] for _ in indices], seen=seen, cache=cache,
                     mask=mask.clone(), positions=positions[..., -1:].clone())
        self._choose(rows, output.logits[:, -1, :])
        return rows

    def _step(self, rows: _Rows) -> None:
        """Feed every row's last token and choose its next one."""
        import torch

        tokens = torch.tensor([[generated[-1]] for generated in rows.generated], device=rows.mask.device)
        rows.mask = torch.cat([rows.mask, rows.mask.new_ones((len(rows), 1))], dim=1)
        rows.positions = rows.positions + 1
        with self.exclusive():
            output = self.model(input_ids=tokens, attention_mask=rows.mask, position_ids=rows.positions,
                                use_cache=True, logits_to_keep=1, **{self.cache_arg: rows.cache})
        self.steps += 1
        self._choose(rows, output.logits[:, -1, :])

    def _prompt_positions(self, inputs):
        """Positions as model.generate builds them for Qwen2.5-VL: a text row (mask cumsum) on top of the three
        rope rows, which get_rope_index computes where images are and which equal the text row elsewhere."""
        import torch

        mask = inputs["attention_mask"]
        text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        if inputs.get("mm_token_type_ids") is not None and inputs.get("image_grid_thw") is not None:
            rope, _ = self.core.get_rope_index(inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"],
                                               image_grid_thw=inputs["image_grid_thw"], attention_mask=mask)
        else:
            rope = text.unsqueeze(0).expand(3, -1, -1)
        return torch.cat([text.unsqueeze(0), rope.to(text.dtype)], dim=0)

    def _choose(self, rows: _Rows, logits) -> None:
        import torch

        scores = logits.float()
        if self.penalty != 1.0:  # as transformers' RepetitionPenaltyLogitsProcessor, over the row's own tokens
            for row, seen in enumerate(rows.seen):
                picked = scores[row, seen]
                scores[row, seen] = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        chosen = scores.argmax(dim=-1).tolist()
        for row, token in enumerate(chosen):
            rows.generated[row].append(token)
            if self.penalty != 1.0:
                rows.seen[row] = torch.cat([rows.seen[row], rows.seen[row].new_tensor([token])])

    def _retire(self, rows: _Rows, done: list[Finished]) -> _Rows | None:
        """Move rows whose chain ended (stop token or max_new_tokens) to `done`; None when no row is left."""
        staying = []
        for row, generated in enumerate(rows.generated):
            stopped = generated[-1] in self.stop_ids
            if stopped or len(generated) >= self.max_new_tokens:
                done.append(Finished(rows.indices[row], generated, stopped))
            else:
                staying.append(row)
        if not staying:
            return None
        if len(staying) < len(rows):
            rows.keep(staying)
        return rows
