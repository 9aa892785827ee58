"""Count code lines of Python packages: no blank lines, comments or docstrings.

Usage: python scripts/code_lines.py DIR [DIR...]  (tests/ directories are skipped).
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def code_lines(source: str) -> int:
    """Lines holding at least one token that is not a comment, outside docstrings."""
    skip = _docstring_lines(ast.parse(source))
    lines: set[int] = set()
    ignored = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in ignored:
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            if line not in skip:
                lines.add(line)
    return len(lines)


def count(directory: Path) -> dict[str, int]:
    return {
        str(path.relative_to(directory)): code_lines(path.read_text(encoding="utf-8"))
        for path in sorted(directory.rglob("*.py"))
        if "tests" not in path.relative_to(directory).parts
    }


def main(argv: list[str]) -> int:
    for arg in argv:
        counts = count(Path(arg))
        for name, n in counts.items():
            print(f"{n:6d}  {arg}/{name}")
        print(f"{sum(counts.values()):6d}  {arg} (total)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
