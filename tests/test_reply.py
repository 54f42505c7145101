import pytest

from evolve.llm.reply import PatchError, ReplyError, apply_blocks, apply_reply, parse_reply

PARENT = """import torch

LR = 0.24


def step(x, lr=LR):
    y = x * lr
    return y


def other(x):
    y = x * lr
    return y
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_search_replace_blocks_apply_in_order():
    reply = "I raise the rate.\n```python\n" + block("LR = 0.24", "LR = 0.3") + "```\nand rename:\n" + block(
        "def other(x):", "def other(x, lr=LR):"
    )
    parsed = parse_reply(reply)
    assert parsed.format == "diff" and len(parsed.blocks) == 2
    child = apply_reply(PARENT, parsed)
    assert "LR = 0.3\n" in child and "def other(x, lr=LR):" in child and child.endswith("return y\n")
    assert child.count("\n") == PARENT.count("\n")


def test_trailing_whitespace_is_ignored_but_indentation_is_not():
    assert "LR = 0.5" in apply_blocks(PARENT, parse_reply(block("LR = 0.24   ", "LR = 0.5")).blocks)
    with pytest.raises(PatchError):
        apply_blocks(PARENT, parse_reply(block("  LR = 0.24", "LR = 0.5")).blocks)


def test_empty_replace_deletes_the_lines():
    child = apply_reply(PARENT, parse_reply(block("def other(x):\n    y = x * lr\n    return y", "")))
    assert "other" not in child


def test_full_module_in_one_fence():
    parsed = parse_reply("Here it is:\n```python\nX = 1\n```\nDone.")
    assert parsed.format == "full" and apply_reply(PARENT, parsed) == "X = 1\n"


@pytest.mark.parametrize(
    "reply, message",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I would lower the learning rate.", "neither SEARCH/REPLACE blocks nor a ```python fence"),
        ("```python\nX = 1\n```\n```python\nY = 2\n```", "2 code fences"),
        ("```python\nX = 1\n", "never closed"),
        ("```python\n\n```", "fence is empty"),
        ("```javascript\nlet x = 1\n```", "tagged `javascript`"),
        ("<<<<<<< SEARCH\nLR = 0.24\n=======\nLR = 0.3\n", "not closed"),
        ("<<<<<<< SEARCH\nLR = 0.24\n>>>>>>> REPLACE\n", "expected `=======`"),
        ("=======\nLR = 0.3\n>>>>>>> REPLACE\n", "outside a block"),
        ("<<<<<<< SEARCH\n\n=======\nLR = 0.3\n>>>>>>> REPLACE\n", "SEARCH part is empty"),
        ("<<<<<<<< SEARCH\nLR = 0.24\n=======\nLR = 0.3\n>>>>>>> REPLACE\n", "is not a marker"),
        ("<<<<<<< SEARCH\nLR = 0.24\n=======\nLR = 0.3\n<<<<<<< SEARCH\n", "in the REPLACE part"),
    ],
)
def test_malformed_replies_say_what_is_wrong(reply, message):
    with pytest.raises(ReplyError) as info:
        parse_reply(reply)
    assert message in str(info.value)


def test_search_not_found_quotes_the_closest_region():
    blocks = parse_reply(block("def step(x, lr=LR):\n    y = x * rate", "def step(x):\n    y = x")).blocks
    with pytest.raises(PatchError) as info:
        apply_blocks(PARENT, blocks)
    error = info.value
    assert error.block_index == 0 and error.occurrences == []
    assert error.closest_line == 6 and error.closest == "def step(x, lr=LR):\n    y = x * lr"
    assert 0.8 < error.similarity < 1
    text = str(error)
    assert "does not occur" in text and "lines 6-7" in text and "-    y = x * lr" in text and "+    y = x * rate" in text


def test_ambiguous_search_lists_the_occurrences():
    with pytest.raises(PatchError, match="occurs 2 times.*lines 7, 12") as info:
        apply_blocks(PARENT, parse_reply(block("    y = x * lr", "    y = 2 * x * lr")).blocks)
    assert info.value.occurrences == [7, 12]


def test_a_later_block_sees_the_earlier_result():
    reply = block("LR = 0.24", "LR = 0.3") + block("LR = 0.3", "LR = 0.4")
    assert "LR = 0.4" in apply_reply(PARENT, parse_reply(reply))
