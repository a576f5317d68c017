"""The shared content reader: the frame every format agrees on, the part types each one names."""

from __future__ import annotations

import pytest

from deploysim.errors import RecordError
from deploysim.ingest.parts import image_part, read_content, text_part
from deploysim.schema import ImagePart, OtherPart, TextPart


def test_strings_and_null_pass_through_and_unknown_parts_are_kept() -> None:
    readers = {"text": text_part}
    assert read_content(None, "m", readers) == "" and read_content("hi", "m", readers) == "hi"
    parts = read_content(
        [{"type": "text", "text": "a"}, {"type": "audio", "clip": 3}], "m", readers
    )
    assert parts == (TextPart(text="a"), OtherPart(kind="audio", data={"clip": 3}))


def test_merge_turns_one_text_part_into_a_string() -> None:
    one = [{"type": "text", "text": "only"}]
    assert read_content(one, "m", {"text": text_part}, merge=True) == "only"
    assert read_content([], "m", {}, merge=True) == ""


def test_a_reader_may_decline_and_the_part_is_kept_as_other() -> None:
    readers = {"image": lambda p, where: image_part(p, "url")}
    got = read_content(
        [{"type": "image", "url": "u.png", "detail": "low"}, {"type": "image"}], "m", readers
    )
    assert got == (ImagePart(image="u.png", detail="low"), OtherPart(kind="image", data={}))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (7, "must be a string, a list of parts or null"),
        ([{"text": "x"}], "m content part 0 has no 'type'"),
        ([{"type": "text"}], "m content part 0 has no 'text'"),
    ],
)
def test_bad_content_names_the_part(raw: object, match: str) -> None:
    with pytest.raises(RecordError, match=match):
        read_content(raw, "m", {"text": text_part})
