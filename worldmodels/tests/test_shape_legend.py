"""The root README's shape legend holds: shape comments, einops patterns and the "Shapes:"
lines of module docstrings use its letters, each in its one meaning.

Checked in every module of the chapters and of worldmodels/ (tests excepted):
- a shape comment `# (B, T, N, D)` names only legend letters (words are free: `(B, horizon)`);
- an einops pattern ("b t (h w) d -> ...") names only legend letters (either case);
- a docstring's `Shapes: B batch, P points, ...` gives each letter a meaning that shares a
  word with the legend's (so "P context frames" or "M the flattened count" fail).
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path
    for folder in [ROOT / "worldmodels", *ROOT.glob("[0-9].*")]
    for path in folder.rglob("*.py")
    if "tests" not in path.relative_to(ROOT).parts
)
EINOPS = ("rearrange", "reduce", "repeat", "pack", "unpack", "einsum")


def legend() -> dict[str, str]:
    """letter -> its meaning, from the README's "Shape letters" table."""
    section = (ROOT / "README.md").read_text().split("## Shape letters", 1)[1]
    section = section.split("\n## ", 1)[0]
    meanings = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("letter", "---"):
            continue
        for letters, meaning in ((cells[0], cells[1]), (cells[2], cells[3])):
            for letter in letters.split(","):
                meanings[letter.strip()] = meaning
    return meanings


LEGEND = legend()
LETTER = re.compile(r"(?<![A-Za-z_'])([A-Za-z])(?![A-Za-z_])")
TOKEN = r"(?:[A-Za-z_][A-Za-z0-9_]*'?|\d+|\.\.\.)"
SIZE = re.compile(rf"{TOKEN}(?:\s*[-+*/]\s*{TOKEN})*")  # one size: "T", "1 + t*k", "B'", "3"


def words(text: str) -> set[str]:
    """Lower-case words of 4+ letters, singular: 'frames per clip' -> {'frame', 'clip'}."""
    return {w.lower().removesuffix("s") for w in re.findall(r"[A-Za-z]{4,}", text)}


def shape_comments(source: str):
    """(line, text) of every `# (..., ...)` comment whose items all look like sizes."""
    for number, line in enumerate(source.splitlines(), 1):
        if "#" not in line:
            continue
        comment = line.split("#", 1)[1]
        for match in re.finditer(r"\(([^()]*,[^()]*)\)", comment):  # a tuple: a comma
            items = [item.strip() for item in match.group(1).split(",")]
            sizes = all(SIZE.fullmatch(item) for item in items if item)
            if sizes and LETTER.search(match.group(1)):
                yield number, match.group(1)


def einops_patterns(tree: ast.AST):
    """(line, pattern) of every string pattern passed to an einops function."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name not in EINOPS:
            continue
        for arg in node.args[1:2] if name != "einsum" else node.args[:1]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield node.lineno, arg.value


def shape_definitions(tree: ast.AST):
    """(letter, its meaning) from the `Shapes:` line of the module docstring."""
    doc = ast.get_docstring(tree) or ""
    match = re.search(r"Shapes?:(.*?)(?:\n\s*\n|$)", doc, re.S)
    if not match:
        return
    pending = []  # letters listed before their shared meaning: "C, H, W pixels"
    for item in " ".join(match.group(1).split()).split(","):
        found = re.match(r"\s*([A-Za-z])'?(?:\s*=\s*[^A-Za-z]*[^ ]*)?\s*(.*)", item)
        head = found.group(1) if found else ""
        rest = found.group(2).strip().rstrip(".") if found else ""
        if not found or (rest and not re.match(r"[a-z\"(]", rest)) or item.strip()[1:2].isalpha():
            pending = []  # prose, not a definition
            continue
        pending.append(head)
        if rest:
            for letter in pending:
                yield letter, rest
            pending = []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shapes_use_the_legend(path):
    source = path.read_text()
    tree = ast.parse(source)
    problems = []
    for number, text in shape_comments(source):
        unknown = sorted(set(LETTER.findall(text)) - set(LEGEND))
        if unknown:
            problems.append(f"line {number}: ({text}) uses {unknown}, not in the legend")
    either_case = {c for letter in LEGEND for c in (letter.lower(), letter.upper())}
    for number, pattern in einops_patterns(tree):
        unknown = sorted(set(LETTER.findall(pattern)) - either_case)
        if unknown:
            problems.append(f"line {number}: einops {pattern!r} uses {unknown}")
    for letter, meaning in shape_definitions(tree):
        if letter not in LEGEND:
            problems.append(f"docstring: {letter} ({meaning}) is not in the legend")
        elif not words(meaning) & words(LEGEND[letter]):
            legend_says = LEGEND[letter]
            problems.append(f"docstring: {letter} = {meaning!r}, the legend says {legend_says!r}")
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_letter_used_for_something_else():
    source = '"""Shapes: B clips, P context frames, F frames ahead."""\nx = 1  # (B, P, F, Z9)\n'
    definitions = dict(shape_definitions(ast.parse(source)))
    assert definitions == {"B": "clips", "P": "context frames", "F": "frames ahead"}
    assert not words(definitions["P"]) & words(LEGEND["P"])  # frames are not points
    assert list(shape_comments(source)) == [(2, "B, P, F, Z9")]
    assert not list(shape_comments("x = 1  # (a runpy warning, or e.g. pi/2 u)\n"))
