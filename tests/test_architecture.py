"""The shape of the package, checked: no import circle, nothing pointing upward, no module
past 400 lines. Every import counts, at the top of a module or inside a function, and
those made for type checking only too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ragqa"
MAX_LINES = 400

# The rooms from the bottom up: a module may import its own room and the rooms below it,
# never one above (the core never imports the faces; the faces are thin layers over rag.py).
LAYERS = (
    {"errors", "_version", "textutil", "types", "settings"},
    {"models"},
    {"index"},
    {"ingest"},
    {"answer"},
    {"evaluation"},
    {"review"},
    {"rag", "testing"},
    {"service"},
    {"cli"},
)


def modules() -> dict[str, Path]:
    """Dotted name (without the leading `ragqa.`; '' for the face) -> file."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that this module imports (by dotted name)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    package = here if is_package else here[:-1]
    found: set[str] = set()

    def add(target: list[str], names: list[str]) -> None:
        base = ".".join(target)
        for n in names:
            sub = f"{base}.{n}" if base else n
            found.add(sub if sub in known else base)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                target = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                add(target, names)
            elif node.module and (node.module == "ragqa" or node.module.startswith("ragqa.")):
                add(node.module.split(".")[1:], names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "ragqa" or a.name.startswith("ragqa."):
                    found.add(".".join(a.name.split(".")[1:]))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def room(name: str) -> str:
    return name.split(".")[0]


def layer(name: str) -> int:
    return next(i for i, rooms in enumerate(LAYERS) if room(name) in rooms)


def test_every_module_is_in_a_room_of_the_layering():
    missing = sorted({room(n) for n in modules() if n and not any(room(n) in rooms for rooms in LAYERS)})
    assert not missing, f"add these to LAYERS: {missing}"


def test_no_import_circle():
    assert cycles(graph()) == []


def test_the_checker_finds_a_circle_and_an_upward_import():
    # the checks themselves can fail: a made-up graph with a circle and an arrow upward
    edges = {"answer.steps": {"rag"}, "rag": {"answer.steps"}, "index.store": set()}
    assert cycles(edges) == [["answer.steps", "rag"]]
    assert layer("answer.steps") < layer("rag")


def test_nothing_imports_the_package_face_or_a_room_above_it():
    upward = sorted(f"{a} -> {b or 'ragqa (the package face)'}" for a, targets in graph().items() if a
                    for b in targets if not b or layer(b) > layer(a))
    assert upward == []


def test_no_module_is_longer_than_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_steps_are_given_parts_never_the_facade():
    assert "rag" not in graph()["answer.steps"]
