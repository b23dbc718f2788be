"""`ragqa` on the command line: a thin layer over ragqa.rag.RAG, one module per group of
commands (ask, ingest, measure, admin, serve; their shared options in common).

Each command opens the library and calls one method. A RagqaError prints one red line
and exits 1; no traceback reaches a person for a foreseeable mistake."""

from __future__ import annotations

import sys

from ..errors import RagqaError

# isort: off
# each registers its commands on `app`, in the order `ragqa --help` lists them
from . import ingest, ask, review, measure, admin, models, serve  # noqa: F401
# isort: on
from .common import app, err

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except RagqaError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # the database is unreachable or refuses: one line, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, SQLAlchemyError):
            raise
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        err.print(f"[bold red]error:[/] database: {reason}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()


if __name__ == "__main__":
    main()
