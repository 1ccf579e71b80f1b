"""The model's posterior of the attributes a prompt asks for: ``scorer="attribute_posterior"``.

Likelihood reranking keeps the candidate the model finds most likely under the prompt, which favours typical samples
whether or not they show what was asked; the condition gain (likelihood minus likelihood under no prompt) favours odd
ones. This scorer asks the model instead which of the prompt's VALUES a candidate shows: the prompt's ids with one
attribute (the motion, the digit or the colour) swapped for each value the model knows are the alternatives, and a
candidate ``x`` asked with caption ``c`` scores

    log p(x | c) - logsumexp over c' in A(c) of log p(x | c')

where ``A(c)`` is ``c`` and its swaps: the log of the model's posterior probability of the asked value (a uniform
prior over the values). Everything the alternatives share (the other words, the digit's shape when the motion is
swapped) adds the same to every term, so a typical sample gains nothing by being typical. With several attributes
swapped the score is the sum of their log posteriors (each attribute swapped alone).

The swaps are made on token ids (each known caption word is one token of the caption tokenizer: "a red 7 moving up
then down" is ``a</w> red</w> 7</w> moving</w> up</w> then</w> down</w>``): the first value of each kind found in the
ids is replaced by each other value of the same kind and form (numerals by numerals, number words by number words).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

# The kinds of attribute a prompt can ask for, in the order they are looked for
ATTRIBUTE_KINDS = ("motion", "digit", "colour")


def attribute_values(tokenizer) -> Dict[str, List[List[str]]]:
    """kind -> groups of interchangeable values the tokenizer knows every word of (a value is swapped only for values
    of its own group): motions (GODIVA's four), digits (the numerals, and separately the number words), colours."""
    from ..data.attributes import DIGIT_WORDS
    from ..processing.vocabulary import known_numerals, vocabulary_by_kind

    vocabulary = vocabulary_by_kind(tokenizer)
    numerals = known_numerals(tokenizer)
    words = [w for w in vocabulary["digits"] if w in DIGIT_WORDS]
    return {"motion": [list(vocabulary["motions"])], "digit": [numerals, words],
            "colour": [list(vocabulary["colours"])]}


def _value_ids(tokenizer, value: str) -> List[int]:
    """The token ids of ``value`` (no special tokens)."""
    return list(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(value)))


def _find(ids: List[int], pattern: List[int]) -> int:
    """The first position of ``pattern`` in ``ids``, or -1."""
    width = len(pattern)
    for start in range(len(ids) - width + 1):
        if ids[start:start + width] == pattern:
            return start
    return -1


class AttributeSwapper:
    """Builds the alternatives of a prompt's ids for :func:`posterior_scores`, for one caption tokenizer.

    Args:
        tokenizer: the pipeline's caption tokenizer (``processor.tokenizer``).
        pad_id: the id that pads a prompt to the model's text length (``config.text_pad_token_id``).
        kinds: the attributes to swap (of :data:`ATTRIBUTE_KINDS`).
    """

    def __init__(self, tokenizer, pad_id: int, kinds: Sequence[str] = ATTRIBUTE_KINDS):
        unknown = [kind for kind in kinds if kind not in ATTRIBUTE_KINDS]
        if unknown:
            raise ValueError(f"unknown attribute kinds {unknown}: the prompt's attributes are {ATTRIBUTE_KINDS}.")
        self.pad_id = int(pad_id)
        self.kinds = tuple(kinds)
        self.groups = {}  # kind -> [[(value, ids), ...] per group]
        for kind, groups in attribute_values(tokenizer).items():
            if kind in self.kinds:
                self.groups[kind] = [[(value, _value_ids(tokenizer, value)) for value in group] for group in groups
                                     if len(group) > 1]

    def swaps(self, ids: torch.Tensor) -> List[Tuple[str, str, torch.Tensor]]:
        """A prompt's ids ``(L,)`` -> ``[(kind, asked value, alternatives (K, L))]``, one entry per kind the prompt
        names (``[]``: it names none), row 0 of each being ``ids`` itself and the others the prompt with that kind's
        first value replaced by each other value of its group (re-padded to ``L``; a longer swap is cut at ``L``)."""
        row = [int(i) for i in ids.tolist()]
        length = len(row)
        found = []
        for kind in self.kinds:
            best = None  # the value found first in the prompt (the longest there if two start at one place)
            for group in self.groups.get(kind, []):
                for value, pattern in group:
                    at = _find(row, pattern)
                    if at >= 0 and (best is None or at < best[0] or (at == best[0] and len(pattern) > len(best[2]))):
                        best = (at, value, pattern, group)
            if best is None:
                continue
            at, asked, pattern, group = best
            rows = [row]
            for value, other in group:
                if value == asked:
                    continue
                swapped = row[:at] + other + row[at + len(pattern):]
                swapped = (swapped + [self.pad_id] * length)[:length]
                rows.append(swapped)
            found.append((kind, asked, torch.tensor(rows, dtype=ids.dtype)))
        return found


def posterior_scores(model, tokens: torch.Tensor, alternatives: List[List[torch.Tensor]],
                     position_mask: Optional[torch.Tensor] = None, batch_size: int = 32) -> torch.Tensor:
    """The summed log posterior of each candidate's asked attributes.

    Args:
        model: a NUWA model with ``token_grid_losses``.
        tokens: candidates' token grids ``(N, T, h, w)``.
        alternatives: per candidate, a list (one per attribute) of alternative caption ids ``(K, L)``, row 0 the asked
            caption (:meth:`AttributeSwapper.swaps`); an empty list gives that candidate 0.
        position_mask: ``(N, T, h, w)`` bool, the grid positions whose losses are read (default all).
        batch_size: rows per forward pass.

    Returns:
        ``(N,)`` float: sum over attributes of ``log p(x | c) - logsumexp_{c'} log p(x | c')`` (each <= 0).
    """
    grids, captions, masks, spans = [], [], [], []
    for index, per_attribute in enumerate(alternatives):
        for ids in per_attribute:
            spans.append((index, ids.shape[0]))
            captions.append(ids)
            grids.append(tokens[index:index + 1].expand(ids.shape[0], *tokens.shape[1:]))
            if position_mask is not None:
                masks.append(position_mask[index:index + 1].expand(ids.shape[0], *tokens.shape[1:]))
    scores = torch.zeros(tokens.shape[0], dtype=torch.float32)
    if not spans:
        return scores
    ids = torch.cat(captions)
    labels = torch.cat(grids)
    mask = torch.cat(masks) if masks else None
    losses = model.token_grid_losses(labels, batch_size=batch_size, input_ids=ids, position_mask=mask)
    first = 0
    for index, count in spans:
        part = -losses[first:first + count]
        scores[index] += float(part[0] - torch.logsumexp(part, dim=0))
        first += count
    return scores
