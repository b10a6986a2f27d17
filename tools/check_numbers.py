"""Check that the measured numbers the documentation quotes come from result files.

Usage, from the repository root::

    python tools/check_numbers.py                 # README.md and docs/*.rst
    python tools/check_numbers.py docs/jule.rst   # some files only
    python tools/check_numbers.py --root DIR      # another tree (the tests' fixtures)

Prints one line per violation, ``file:line: message``, and exits 1 if there is any.

The convention
--------------
The text is cut into *blocks*: a paragraph, a list item with its continuation
lines, a table (a Markdown ``|`` table, an RST grid or simple table), a
``csv-table`` / ``list-table`` / ``table`` directive with its caption, or the
body of an admonition (``note``, ``warning``, ...). A block ends at a blank
line (a directive at the first line indented no deeper than it), so a list
item's later paragraphs are blocks of their own. Headings separate blocks and
are not checked.

A block that quotes measured numbers names its source as the literal path
``benchmarks/results/<name>.md`` somewhere in the block (inline literal or not).
A table may instead rely on the paragraph directly above it (its caption or
introduction: no heading and no other block in between).

What is checked:

(a) every cited ``benchmarks/results/<name>.md`` exists;
(b) in a block that cites files, every *measurement* appears verbatim, as a
    number, in one of them (thousands separators are ignored: ``7,465`` matches
    ``7465``). Measurements are decimals with at least two digits after the
    point (NMI and ACC ``0.904``, seconds ``12.95``) and any number followed by a
    unit of time or memory (``128 s``, ``6.5 min``, ``2 hours``, ``3.3 GB``);
(c) a block with an NMI-like number (``0.`` and three digits) cites a file.

Not checked: literal and code blocks (after ``::``, ``code-block`` and the
like, Markdown fences, ``>>>`` lines), math, inline literals and other text in
backquotes (``eta=0.9``), version strings (``2.13.0``, ``Python 3.11``), URLs,
numbers with a sign (differences such as ``+0.016``; also the second number
of a range ``0.68-0.98``) and table rows whose first cell starts with "paper"
(the publication's own numbers). Any other directive (``figure``, ``math``,
``toctree``, ...) is skipped.
"""

import argparse
import functools
import re
import sys
from pathlib import Path

CITATION = re.compile(r"benchmarks/results/[\w.-]+\.md")
_START = r"(?<![\w.,+±-])"  # not inside a word or a longer number, not a difference
_END = r"(?!\w|[.,]\d)"
_DECIMAL = r"\d[\d,]*\.\d{2,}"
_UNIT = r"(?:ms|s|sec|seconds?|min|minutes?|h|hours?|[kMG]B)"
MEASUREMENT = re.compile(rf"{_START}(?:(\d[\d,]*(?:\.\d+)?)\s?{_UNIT}(?!\w)|({_DECIMAL}){_END})")
NMI_LIKE = re.compile(rf"{_START}0\.\d{{3}}{_END}")
FILE_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
# Text no number is taken from: ``literals``, `interpreted text` (with a role),
# URLs, version strings, and software names with their version.
_SOFTWARE = r"python|pytorch|torch|numpy|scipy|scikit-learn|sklearn|numba|pynndescent|cuda"
HIDDEN = re.compile(
    r"(?::[\w:-]+:)?``.+?``|(?::[\w:-]+:)?`[^`]+`|https?://\S+|\d+(?:\.\d+){2,}"
    rf"|\b(?i:{_SOFTWARE})\s+\d+(?:\.\d+)+",
    re.S,
)

ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:._])\1+\s*$")
SIMPLE_TABLE_BORDER = re.compile(r"^\s*=+(?:\s+=+)+\s*$")
GRID_TABLE = re.compile(r"^\s*\+[-=+]+\+\s*$")
DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::")
LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)]|#\.)\s+\S")
TABLE_DIRECTIVES = {"csv-table", "list-table", "table"}
PROSE_DIRECTIVES = {
    "note",
    "warning",
    "tip",
    "hint",
    "important",
    "caution",
    "attention",
    "danger",
    "error",
    "admonition",
    "seealso",
    "topic",
    "sidebar",
    "rubric",
}


def _indent(line):
    return len(line) - len(line.lstrip())


def _blank(line):
    return not line.strip()


def blocks(lines):
    """Cut ``lines`` into blocks ``(kind, first line index, lines, intro)``.

    ``kind`` is "paragraph", "item" or "table"; ``intro`` is, for a table, the
    index in the returned list of the prose block right above it (else None).
    """
    out = []
    previous = None  # index of the last prose block, while nothing else follows it
    i, n = 0, len(lines)

    def indented_after(j, indent):
        """End of the blank or deeper-indented lines from ``j`` on."""
        while j < n and (_blank(lines[j]) or _indent(lines[j]) > indent):
            j += 1
        return j

    def until_blank(j):
        while j < n and not _blank(lines[j]):
            j += 1
        return j

    while i < n:
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < n else ""
        if not stripped:
            i += 1
            continue
        if stripped.startswith(("```", "~~~")):  # Markdown fence
            j = i + 1
            while j < n and not lines[j].strip().startswith(stripped[:3]):
                j += 1
            i, previous = j + 1, None
            continue
        m = DIRECTIVE.match(line)
        if m or stripped == ".." or stripped.startswith(".. "):  # directive, comment, target
            j = indented_after(i + 1, _indent(line))
            name = m.group(2) if m else ""
            if name in TABLE_DIRECTIVES:
                out.append(("table", i, lines[i:j], previous))
            elif name in PROSE_DIRECTIVES:
                out.append(("paragraph", i, lines[i:j], None))
            if m:
                previous = None
            i = j
            continue
        if stripped.startswith("#") and not stripped.startswith("#."):  # Markdown heading
            i, previous = i + 1, None
            continue
        if ADORNMENT.match(line) and i + 2 < n and ADORNMENT.match(lines[i + 2]):
            i, previous = i + 3, None  # RST heading with overline
            continue
        if ADORNMENT.match(nxt) and len(nxt.strip()) >= len(stripped) and not _indent(line):
            i, previous = i + 2, None  # RST heading
            continue
        if stripped.startswith(">>>"):  # doctest block
            i, previous = until_blank(i), None
            continue
        if stripped.startswith("|") or GRID_TABLE.match(line) or SIMPLE_TABLE_BORDER.match(line):
            j = until_blank(i)
            out.append(("table", i, lines[i:j], previous))
            i, previous = j, None
            continue
        m = LIST_ITEM.match(line)
        j = i + 1
        if m:  # the item ends at a blank line or at the next item of its list
            while j < n and not _blank(lines[j]):
                other = LIST_ITEM.match(lines[j])
                if other and len(other.group(1)) <= len(m.group(1)):
                    break
                j += 1
        else:
            j = until_blank(i)
        out.append(("item" if m else "paragraph", i, lines[i:j], None))
        previous = len(out) - 1
        if lines[j - 1].rstrip().endswith("::"):  # a literal block follows
            j, previous = indented_after(j, _indent(line)), None
        i = j
    return out


def _hide(text):
    """``text`` with every hidden span blanked out (newlines kept)."""
    return HIDDEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _table_rows(kind, block_lines):
    """Lines whose numbers count: all but the rows that quote the paper."""
    if kind != "table":
        return block_lines
    keep = []
    for line in block_lines:
        first = line.strip().lstrip('|*-" ').lower()
        keep.append("" if first.startswith("paper") else line)
    return keep


def _normal(number):
    return number.replace(",", "")


@functools.cache
def _file_numbers(path):
    """Every number in the file at ``path``, without thousands separators."""
    text = path.read_text(encoding="utf-8")
    return {_normal(m.group()) for m in FILE_NUMBER.finditer(text)}


def check_file(root, rel):
    """Violations ``(rel, line number, message)`` of one documentation file."""
    root = Path(root)
    lines = (root / rel).read_text(encoding="utf-8").splitlines()
    found = blocks(lines)
    violations = []
    for block in found:
        kind, start, block_lines, intro = block
        cited = sorted(set(CITATION.findall("\n".join(block_lines))))
        if not cited and intro is not None:
            cited = sorted(set(CITATION.findall("\n".join(found[intro][2]))))
        text = _hide("\n".join(_table_rows(kind, block_lines)))
        missing = [c for c in cited if not (root / c).is_file()]
        for c in missing:
            row = next((k for k, s in enumerate(block_lines) if c in s), 0)
            violations.append((rel, start + row + 1, f"cites {c}, which does not exist"))
        numbers = set()
        for c in cited:
            if c not in missing:
                numbers |= _file_numbers(root / c)
        nmi_like = []
        for row, line in enumerate(text.split("\n")):
            where = start + row + 1
            if not cited:
                nmi_like += [(where, m.group()) for m in NMI_LIKE.finditer(line)]
                continue
            if missing and not numbers:
                continue
            for m in MEASUREMENT.finditer(line):
                value = next(g for g in m.groups() if g)
                if _normal(value) not in numbers:
                    violations.append((rel, where, f"{value} is not in {', '.join(cited)}"))
        if nmi_like:
            values = ", ".join(v for _, v in nmi_like)
            violations.append(
                (rel, nmi_like[0][0], f"NMI-like {values} without a benchmarks/results/ citation")
            )
    return violations


def default_files(root):
    root = Path(root)
    files = [p for p in [root / "README.md"] if p.is_file()]
    files += sorted((root / "docs").glob("*.rst"))
    return [str(p.relative_to(root)) for p in files]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="files relative to the root (default: all)")
    parser.add_argument(
        "--root",
        default=str(Path(__file__).resolve().parent.parent),
        help="repository root (default: the one holding this script)",
    )
    args = parser.parse_args(argv)
    violations = []
    for rel in args.files or default_files(args.root):
        violations += check_file(args.root, rel)
    for rel, line, message in violations:
        print(f"{rel}:{line}: {message}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
