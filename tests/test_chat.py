from rich.console import Console

from ragqa.cli.chat import run_chat


def lines(*items):
    it = iter(items)

    def read(_prompt):
        try:
            value = next(it)
        except StopIteration:
            raise EOFError from None
        if isinstance(value, BaseException):
            raise value
        return value

    return read


def test_chat_answers_follows_up_and_obeys_commands(fake_rag, docs):
    fake_rag.ingest([docs])
    console = Console(record=True, width=120)
    run_chat(fake_rag, console, read=lines(
        "/help",
        "Which town did Etna destroy in 1669?",
        "/sources",
        KeyboardInterrupt(),  # Ctrl-C at the prompt keeps the session
        "and how high is it?",
        "/reset",
        "/bogus",
        "/quit",
        "never read",
    ))
    out = console.export_text()
    assert "/sources" in out and "Nicolosi" in out
    assert "Sources given to the model" in out
    # the follow-up was rewritten (or joined to the previous question) before retrieval
    assert "(searching for:" in out
    assert "Conversation forgotten." in out and "Unknown command /bogus" in out
    assert "never read" not in out


def test_ctrl_c_during_an_answer_stops_it_not_the_session(fake_rag, docs):
    fake_rag.ingest([docs])

    from ragqa.models.generator import BaseGenerator

    class Interrupting(BaseGenerator):
        name = "interrupting"
        calls = []

        def count_tokens(self, text):
            return 1

        def chat(self, messages, params):
            yield "Partial "
            raise KeyboardInterrupt

    fake_rag._generator = Interrupting()
    console = Console(record=True, width=120)
    run_chat(fake_rag, console, read=lines("Which town did Etna destroy in 1669?", "/help"))
    out = console.export_text()
    assert "(stopped)" in out and "Commands:" in out
