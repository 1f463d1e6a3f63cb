"""A later chapter imports an earlier chapter's model modules, never its run plumbing.

A chapter package's `config`, `data`, `build`, `evaluate*`, `figures` and `experiment` modules
and its scripts are its own experiment; chapters 3-5 (and chapter 2 today) may import the
model modules (`video_tokenizer.fsq`, `.transformer`, `.pretrained`, ...) and nothing else.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# chapter number -> package, from pyproject's package-dir table
PACKAGES = {
    int(folder.split(".", 1)[0]): name
    for name, folder in re.findall(
        r'^(\w+) = "(\d+\.[\w-]+)/\w+"$', (ROOT / "pyproject.toml").read_text(), re.M
    )
}
PLUMBING = re.compile(r"(config|data|build|evaluate\w*|figures|experiment)$")


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def plumbing_imports(path: Path, own_chapter: int) -> list[str]:
    found = []
    for line, module, names in imported_modules(path):
        package, _, rest = module.partition(".")
        earlier = [n for n, p in PACKAGES.items() if p == package and n < own_chapter]
        if not earlier:
            continue
        targets = [rest] if rest else names  # `from video_tokenizer import experiment`
        found += [f"line {line}: {module} {t}" for t in targets if PLUMBING.match(t)]
    return found


CHAPTER_FILES = [
    (number, path)
    for number in PACKAGES
    for folder in ROOT.glob(f"{number}.*")
    for path in sorted(folder.rglob("*.py"))
    if "tests" not in path.relative_to(folder).parts
]


@pytest.mark.parametrize(
    ("number", "path"), CHAPTER_FILES, ids=[str(p.relative_to(ROOT)) for _, p in CHAPTER_FILES]
)
def test_no_chapter_imports_an_earlier_chapters_plumbing(number, path):
    assert not plumbing_imports(path, number), plumbing_imports(path, number)


def test_the_check_sees_the_old_token_loader(tmp_path):
    bad = tmp_path / "tokens.py"  # what chapter 2 once did
    bad.write_text("from video_tokenizer.experiment import load_tokenizer\n")
    assert plumbing_imports(bad, 2) == ["line 1: video_tokenizer.experiment experiment"]
    assert PACKAGES[1] == "video_tokenizer" and PACKAGES[2] == "dynamics_model"
