"""The errors ragqa raises on purpose.

Every foreseeable mistake a person can make raises one of these, with a message written
for that person; the CLI prints the message on one line and exits non-zero.

    RagqaError
    ├── ConfigError              a setting has a value that cannot work
    ├── NotFoundError            no such job or document
    │   └── IndexNotFoundError   no index at the given directory (run `ragqa ingest` first)
    ├── IndexMismatchError       the index was built with another embedder
    ├── IndexLockedError         another process is writing this index
    ├── BusyError                the service's question queue is full, or the wait timed out
    ├── ModelError               a model file is missing or cannot be loaded
    ├── InputError               a path, a question or an upload that cannot be used
    │   └── TooLargeError        an upload or a request body over its limit
    └── DocumentError            one file cannot be read (ingest reports it and goes on)
        ├── UnsupportedFormatError
        └── EmptyDocumentError
"""

from __future__ import annotations


class RagqaError(Exception):
    """Base class of every error ragqa raises on purpose."""


class ConfigError(RagqaError):
    pass


class NotFoundError(RagqaError):
    pass


class IndexNotFoundError(NotFoundError):
    pass


class IndexMismatchError(RagqaError):
    pass


class IndexLockedError(RagqaError):
    pass


class BusyError(RagqaError):
    """Try again later; `retry_after` is a hint in seconds."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class ModelError(RagqaError):
    pass


class InputError(RagqaError):
    pass


class TooLargeError(InputError):
    pass


class DocumentError(RagqaError):
    """One document could not be read; ingest records the reason and continues."""


class UnsupportedFormatError(DocumentError):
    pass


class EmptyDocumentError(DocumentError):
    pass
