"""House style that a reader feels: every function of the package fits on a screen."""

from __future__ import annotations

import ast

from .conftest import REPO

#: Lines a function may take, from its first decorator to its last line (issue 9: under 50).
MAX_LINES = 49


def function_lengths() -> dict[str, int]:
    """Every function and method in src/, as "path:line name" -> its length in lines."""
    lengths = {}
    for path in sorted(REPO.joinpath("src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                where = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
                lengths[where] = node.end_lineno - first + 1
    return lengths


def test_every_function_fits_on_a_screen():
    lengths = function_lengths()
    assert len(lengths) > 500  # the whole package was read
    too_long = {where: n for where, n in lengths.items() if n > MAX_LINES}
    assert too_long == {}
