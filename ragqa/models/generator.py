"""What ragqa needs of a model that writes answers, and the abilities one may have.

`Generator` is the contract: `chat` (stream the reply) and `count_tokens`, plus optional
abilities, declared rather than probed for. `BaseGenerator` gives every ability its
"cannot" default: a generator that has none subclasses it and writes two methods.

- `load()`: load the weights now (kept out of an answer's timings);
- `identity`: what a calibration is tied to (default: the name);
- `last_logprobs`, `last_start_probability`: read after `chat`, they feed the confidence;
- `can_self_check` and `yes_probability(messages, apart=False)`: P(yes) among yes/no for
  the reply's first token (the self-check and sentence-check signals); `apart`: the
  question does not continue the answer's conversation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    seed: int = 42
    stop: tuple[str, ...] = ()
    grammar: str | None = None  # GBNF; generators that cannot constrain output ignore it
    # the words an extractive answer may start with: the generator reports, in
    # `last_start_probability`, the share of their first tokens' probability that the
    # chosen first token has (how sure the model is of where the answer starts)
    candidates: tuple[str, ...] = ()


@runtime_checkable
class Generator(Protocol):
    name: str
    can_self_check: bool

    def chat(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        """Stream the assistant's reply as text pieces."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def load(self) -> None: ...

    @property
    def identity(self) -> dict[str, Any]: ...

    @property
    def last_logprobs(self) -> Sequence[float] | None:
        """After chat(): the log-probability of each generated token under the model's
        unconstrained distribution, or None."""
        ...

    @property
    def last_start_probability(self) -> float | None:
        """After chat() with candidates: how sure the model was of where the span starts."""
        ...

    def yes_probability(self, messages: Sequence[Message], apart: bool = False) -> float | None: ...


class BaseGenerator:
    """The abilities' defaults: none. Subclass it and write `chat` and `count_tokens`."""

    name = "generator"
    can_self_check = False
    last_logprobs: Sequence[float] | None = None

    @property
    def last_start_probability(self) -> float | None:
        return None

    def chat(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def load(self) -> None:
        """Nothing to load."""

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": self.name}

    def yes_probability(self, messages: Sequence[Message], apart: bool = False) -> float | None:
        return None
