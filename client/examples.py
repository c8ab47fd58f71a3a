"""The example flows shipped in the package (``flowtide/examples``): found the same way in a clone and in an
installed wheel, so documentation can name them without a path.

    flowtide.example("greet")          # Path of examples/greet.yaml
    flowtide.examples()                # {"demo": "...", "greet": "...", "hello": "...", "seeds/003-...": ...}
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"  # the repository's examples/, or flowtide/examples
SUFFIXES = (".yaml", ".yml", ".json")


def examples() -> dict[str, str]:
    """``{name: what it shows}`` of every shipped example flow (the name is its path without the suffix)."""
    out = {}
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.suffix in SUFFIXES and ".test." not in p.name):
        name = path.relative_to(EXAMPLES).with_suffix("").as_posix()
        out[name] = _summary(path)
    return out


def example(name: str) -> Path:
    """The path of the shipped example ``name`` (``"hello"``, ``"greet"``, ``"seeds/004-timeouts"``)."""
    for suffix in SUFFIXES:
        path = EXAMPLES / f"{name}{suffix}"
        if path.is_file() and EXAMPLES in path.resolve().parents:
            return path
    raise FileNotFoundError(f"no example flow named {name!r}; the examples are: {', '.join(examples())}")


def _summary(path: Path) -> str:
    """The first sentence of the leading comment (YAML), or the ``description`` / ``name`` (JSON)."""
    text = path.read_text(encoding="utf-8")
    lines = [line[1:].strip() for line in text.splitlines()[:5] if line.startswith("#")]
    if lines:
        first = " ".join(lines).split(". ")[0].rstrip(".")
        return first if len(first) <= 110 else first[:109] + "…"
    import json
    try:
        doc = json.loads(text)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        return str(doc.get("description") or doc.get("name") or "")
    return ""
