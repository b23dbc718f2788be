"""`ragqa chat`: an interactive REPL over RAG. Follow-ups are rewritten into standalone
questions (RAG.condense) before retrieval; Ctrl-C stops the answer, not the session."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from ..errors import RagqaError
from ..types import Answer

if TYPE_CHECKING:
    from ..rag import RAG
from .render import print_stream, sources_table

HELP = """Commands:
  /sources   show every source given to the model for the last answer
  /reset     forget the conversation (follow-ups are read against it)
  /help      this text
  /quit      leave (or Ctrl-D)
Ctrl-C stops the answer being written and keeps the session."""


def run_chat(rag: "RAG", console: Console, top_k: int | None = None, read: Callable[[str], str] = input) -> None:
    console.print(Text(f"ragqa chat · index {rag.index_dir} · /help for commands", style="bold"))
    history: list[tuple[str, str]] = []
    last: Answer | None = None
    while True:
        try:
            line = read("\n? ").strip()
        except EOFError:
            console.print()
            return
        except KeyboardInterrupt:
            console.print()
            continue
        if not line:
            continue
        if line.startswith("/"):
            command = line.split()[0].lower()
            if command in ("/quit", "/exit", "/q"):
                return
            if command == "/help":
                console.print(HELP)
            elif command == "/reset":
                history.clear()
                last = None
                console.print("Conversation forgotten.")
            elif command == "/sources":
                console.print(sources_table(last) if last else "No answer yet.")
            else:
                console.print(f"Unknown command {command}; /help lists them.")
            continue
        try:
            query = rag.condense(history, line) if history else line
            if query != line:
                console.print(Text(f"(searching for: {query})", style="dim"))
            answer = print_stream(console, rag.stream(line, top_k=top_k, retrieval_query=query if query != line else None,
                                                          interface="chat"))
            last = answer
            history.append((query, answer.answer if not answer.abstained else ""))
        except KeyboardInterrupt:
            console.print(Text("\n(stopped)", style="yellow"))
        except RagqaError as e:
            console.print(Text(f"error: {e}", style="bold red"))
