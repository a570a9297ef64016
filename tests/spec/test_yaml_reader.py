"""The positioned YAML reader: data, positions, and every bad-input case as a located problem."""

from __future__ import annotations

from batchimage.spec.yaml import MAX_DEPTH, Position, decode, read_yaml


def test_reads_data_and_positions_of_keys_and_values() -> None:
    doc, problems = read_yaml("a: 1\nb:\n  - x\n  - {c: on, 'd': \"q\"}\n")
    assert problems == []
    assert doc is not None
    assert doc.data == {"a": 1, "b": ["x", {"c": True, "d": "q"}]}
    assert doc.keys[("b",)] == Position(2, 1)
    assert doc.values[("b", 0)] == Position(3, 5)
    assert doc.values[("b", 1, "c")] == Position(4, 9)
    assert doc.keys[("b", 1, "d")] == Position(4, 13)
    assert doc.locate(("b", 1, "missing")) == Position(4, 5)  # nearest written ancestor


def test_keys_stay_strings_and_timestamps_stay_text() -> None:
    doc, _ = read_yaml("on: yes\nno: 2027-01-31\n1: 0x10\n")
    assert doc is not None
    assert doc.data == {"on": True, "no": "2027-01-31", "1": 16}


def test_merge_keys_let_written_keys_win() -> None:
    doc, problems = read_yaml("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert problems == []
    assert doc is not None
    assert doc.data["use"] == {"x": 1, "y": 3}
    assert doc.values[("use", "y")] == Position(4, 6)


def test_duplicate_key_is_located_and_first_value_kept() -> None:
    doc, problems = read_yaml("a: 1\nb: 2\na: 3\n")
    assert doc is not None and doc.data["a"] == 1
    assert [(p.position, p.path, p.message) for p in problems] == [
        (Position(3, 1), ("a",), "duplicate key 'a' (first written at line 1)")
    ]


def test_tab_indentation_is_a_syntax_problem_with_a_hint() -> None:
    doc, problems = read_yaml("a:\n\tb: 1\n")
    assert doc is None
    assert problems[0].position == Position(2, 1)
    assert "never tabs" in problems[0].message


def test_unsupported_tag_is_rejected() -> None:
    _, problems = read_yaml("a: !!python/object/apply:os.system ['true']\n")
    assert (
        problems and "unsupported YAML tag '!!python/object/apply:os.system'" in problems[0].message
    )


def test_alias_bomb_stops_with_a_located_problem() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    doc, problems = read_yaml("\n".join(lines) + "\n")
    assert doc is None
    assert "alias bomb" in problems[0].message
    assert problems[0].position.line == 5  # where *a3 is used inside a4, not where a0 is


def test_deep_nesting_and_recursive_aliases_stop() -> None:
    depth = MAX_DEPTH + 5
    _, problems = read_yaml("[" * depth + "]" * depth)
    assert "deeper than" in problems[0].message
    _, problems = read_yaml("a: &a [*a]\n")
    assert "deeper than" in problems[0].message
    _, problems = read_yaml("a: &a {<<: *a, b: 1}\n")
    assert "deeper than" in problems[0].message


def test_empty_file_several_documents_and_control_characters() -> None:
    assert read_yaml("")[1][0].message == "the file is empty"
    assert read_yaml("# only a comment\n")[1][0].message == "the file is empty"
    _, problems = read_yaml("a: 1\n---\nb: 2\n")
    assert problems[0].position == Position(2, 1) and "one YAML document" in problems[0].message
    _, problems = read_yaml("a: b\x00c\n")
    assert problems[0].position == Position(1, 5)
    assert "#x0000 is not allowed" in problems[0].message


def test_non_utf8_bytes_are_located() -> None:
    text, problems = decode(b"a: 1\nb: caf\xe9\n")
    assert text is None
    assert problems[0].position == Position(2, 7)
    assert "not valid UTF-8" in problems[0].message
    assert decode("\ufeffa: 1\n".encode())[0] == "a: 1\n"


def test_complex_keys_are_rejected() -> None:
    doc, problems = read_yaml("? [a, b]\n: c\nd: 1\n")
    assert doc is not None and doc.data == {"d": 1}
    assert problems[0].message == "a key must be a plain name, not a list or map"
