"""The OpenAI chat-completions shape, so that existing clients can talk to ragqa.

The last message must be the user's question; earlier user/assistant turns are the
conversation, used (as in `ragqa chat`) to rewrite a follow-up into a standalone
question for retrieval. The reply's `content` is the answer followed by the sources it
cites, or ragqa's abstention with the reason, since a plain client shows only that;
the whole Answer (citations with spans, confidence, signals, reason) rides in the
extra field `ragqa`.

With `"stream": true` the content arrives in one delta after the answer is checked, not
token by token: a client shows deltas as they come, and a draft that ragqa then
withdraws must not have been shown as an answer. (`POST /v1/ask` with `"stream": true`
streams the draft's tokens, marked as a draft, for clients that know the difference.)"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..types import Answer, where

HISTORY_TURNS = 3


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": "..."}, ...]
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class RagqaOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    top_k: int | None = Field(None, ge=1, le=20)
    filters: dict[str, Any] | None = None


class ChatRequest(BaseModel):
    """Sampling fields (temperature, max_tokens, ...) are accepted and ignored: the
    server's settings decide them, since the calibration was fitted under them."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    ragqa: RagqaOptions | None = None

    def question_and_history(self) -> tuple[str, list[tuple[str, str]]]:
        last = self.messages[-1]
        if last.role != "user" or not last.text().strip():
            raise InputError("the last message must be the user's question")
        history: list[tuple[str, str]] = []
        turns = [m for m in self.messages[:-1] if m.role in ("user", "assistant")]
        for asked, replied in zip(turns, turns[1:]):
            if asked.role == "user" and replied.role == "assistant":
                history.append((asked.text(), replied.text()))
        return last.text(), history[-HISTORY_TURNS:]


def content(answer: Answer) -> str:
    """What a plain chat client shows: the answer and the sources it cites, or the abstention and why."""
    if answer.abstained:
        return f"{answer.answer} ({answer.reason})"
    lines = [answer.answer, ""]
    for c in answer.citations:
        lines.append(f"[{c.n}] {where(c.document, c.page)}: \u201c{c.quote}\u201d")
    return "\n".join(lines).rstrip()


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content(answer)}, "finish_reason": "stop"}],
        "ragqa": answer.to_dict(),
    }


class ChunkStream:
    """The server-sent events of a streamed completion: a role delta first, then the
    checked content, then the finish chunk carrying the Answer, then [DONE]."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    def start(self) -> str:
        return self._chunk({"role": "assistant", "content": ""})

    def item(self, item: str | Answer) -> str:
        if not isinstance(item, Answer):
            return ""  # the draft's tokens wait for the check
        return (self._chunk({"content": content(item)}) + self._chunk({}, "stop", ragqa=item.to_dict())
                + "data: [DONE]\n\n")

    @staticmethod
    def error(body: dict[str, Any]) -> str:
        return f"data: {json.dumps(body)}\n\n"
