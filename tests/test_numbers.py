"""tools/check_numbers.py: documented numbers come from the result files they cite."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "data", "check_numbers")

_spec = importlib.util.spec_from_file_location(
    "check_numbers", os.path.join(ROOT, "tools", "check_numbers.py")
)
check_numbers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_numbers)


def test_good_examples_pass():
    # citations in the block, a table's intro paragraph, a list item and a note;
    # code, literals, math, versions, URLs, differences and the paper's row ignored
    assert check_numbers.check_file(FIXTURE, "docs/good.rst") == []


def test_bad_examples_are_reported_with_their_lines():
    assert check_numbers.check_file(FIXTURE, "docs/bad.rst") == [
        ("docs/bad.rst", 4, "0.94 is not in benchmarks/results/sample.md"),
        ("docs/bad.rst", 5, "127 is not in benchmarks/results/sample.md"),
        ("docs/bad.rst", 7, "NMI-like 0.901 without a benchmarks/results/ citation"),
        ("docs/bad.rst", 9, "cites benchmarks/results/nowhere.md, which does not exist"),
        ("docs/bad.rst", 11, "0.902 is not in benchmarks/results/sample.md"),
        # the paragraph citing sample.md is in another section: the table has no source
        ("docs/bad.rst", 20, "NMI-like 0.935 without a benchmarks/results/ citation"),
        ("docs/bad.rst", 23, "NMI-like 0.888 without a benchmarks/results/ citation"),
    ]


def test_markdown_table_takes_the_citation_of_its_intro():
    # the JULE-RC row is in the file; the KMeans row is not; fenced and inline code is not read
    assert check_numbers.check_file(FIXTURE, "README.md") == [
        ("README.md", 8, "0.644 is not in benchmarks/results/sample.md"),
        ("README.md", 8, "1.7 is not in benchmarks/results/sample.md"),
    ]


def test_command_line_exit_code_and_output(capsys):
    assert check_numbers.main(["--root", FIXTURE, "docs/good.rst"]) == 0
    assert capsys.readouterr().out == ""
    assert check_numbers.main(["--root", FIXTURE]) == 1  # README.md and docs/*.rst
    out = capsys.readouterr().out.splitlines()
    assert "docs/bad.rst:7: NMI-like 0.901 without a benchmarks/results/ citation" in out
    assert "README.md:8: 1.7 is not in benchmarks/results/sample.md" in out
    assert len(out) == 9


def test_repository_docs_quote_their_result_files(capsys):
    status = check_numbers.main(["--root", ROOT])
    assert status == 0, capsys.readouterr().out
