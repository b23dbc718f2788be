"""The errors ragqa raises on purpose.

Every foreseeable mistake a person can make raises one of these, with a message written
for that person; the CLI prints the message on one line and exits non-zero.

    RagqaError
    ├── ConfigError              a setting has a value that cannot work
    ├── IndexNotFoundError       no index at the given directory (run `ragqa ingest` first)
    ├── IndexMismatchError       the index was built with another embedder
    ├── IndexLockedError         another process is writing this index
    ├── ModelError               a model file is missing or cannot be loaded
    ├── InputError               a path or a question that cannot be used
    └── DocumentError            one file cannot be read (ingest reports it and goes on)
        ├── UnsupportedFormatError
        └── EmptyDocumentError
"""

from __future__ import annotations


class RagqaError(Exception):
    """Base class of every error ragqa raises on purpose."""


class ConfigError(RagqaError):
    pass


class IndexNotFoundError(RagqaError):
    pass


class IndexMismatchError(RagqaError):
    pass


class IndexLockedError(RagqaError):
    pass


class ModelError(RagqaError):
    pass


class InputError(RagqaError):
    pass


class DocumentError(RagqaError):
    """One document could not be read; ingest records the reason and continues."""


class UnsupportedFormatError(DocumentError):
    pass


class EmptyDocumentError(DocumentError):
    pass
