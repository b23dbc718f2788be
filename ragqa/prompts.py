"""The messages sent to the model: numbered sources for an answer, and the rewrite of a
follow-up question into a standalone one."""

from __future__ import annotations

from collections.abc import Sequence

from .types import Hit

ABSTAIN_TEXT = "I cannot answer that from these documents."


def answer_messages(question: str, sources: Sequence[Hit], system_prompt: str) -> list[dict[str, str]]:
    lines = []
    for n, hit in enumerate(sources, start=1):
        where = hit.chunk.document + (f", page {hit.chunk.page}" if hit.chunk.page else "")
        lines.append(f"[{n}] ({where}) {' '.join(hit.chunk.text.split())}")
    user = "Sources:\n" + "\n\n".join(lines) + f"\n\nQuestion: {question.strip()}\nAnswer, citing the source number like [1]:"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def condense_messages(history: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    convo = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history[-3:])
    return [
        {"role": "system", "content": "Rewrite the user's last question so that it can be understood without "
                                      "the conversation. Reply with the rewritten question only."},
        {"role": "user", "content": f"Conversation:\n{convo}\n\nLast question: {question}\nRewritten question:"},
    ]
