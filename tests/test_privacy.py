"""De-identification: consistent surrogates, formats, metadata, audit, real tau-bench logs."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from deploysim.keys import pseudonym
from deploysim.privacy import DEID_VERSION, Deidentifier
from deploysim.privacy.detector import Detector
from deploysim.privacy.post import PostProcess
from deploysim.privacy.rules import Detection, iban_ok
from deploysim.privacy.surrogates import EntityTable
from deploysim.schema import Conversation, Message, Provenance, Reference, ToolCall

from .conftest import TAU

KEY = b"test-key"


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


@pytest.fixture(scope="module")
def deid(detector: Detector) -> Deidentifier:
    return Deidentifier(key=KEY, detector=detector)


def _user(text: str) -> Message:
    return Message(role="user", content=text)


def _one(deid: Deidentifier, text: str) -> str:
    conv = deid.deidentify(Conversation(messages=(_user(text),))).conversation
    assert conv is not None
    return conv.messages[0].text


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _support_conversation() -> Conversation:
    profile = {
        "name": {"first_name": "Tessa", "last_name": "Okafor"},
        "email": "tessa.okafor2291@example.com",
        "reservations": ["KT4RW8"],
    }
    return Conversation(
        messages=(
            Message(
                role="system",
                content="You are the support agent of Acme Air. Billing: John Carter.",
            ),
            _user("Hi, my name is Tessa Okafor and I need help with reservation KT4RW8."),
            Message(
                role="assistant",
                tool_calls=(
                    ToolCall(
                        id="c1",
                        function="find_user",
                        arguments={"full_name": "Tessa Okafor", "note": "caller is Tessa Okafor"},
                        raw_arguments=json.dumps(
                            {"full_name": "Tessa Okafor", "note": "caller is Tessa Okafor"}
                        ),
                    ),
                ),
            ),
            Message(role="tool", tool_call_id="c1", content=json.dumps(profile)),
            Message(
                role="assistant", content="Thanks Tessa Okafor. John Carter from billing will call."
            ),
        ),
        references=(
            Reference(
                label="rejected",
                message=Message(role="assistant", content="Sorry Tessa Okafor, no."),
            ),
        ),
    )


def test_one_person_one_surrogate_everywhere(deid: Deidentifier) -> None:
    result = deid.deidentify(_support_conversation())
    conv = result.conversation
    assert conv is not None and result.version == DEID_VERSION
    m = re.fullmatch(r"Hi, my name is (\w+) (\w+) and .*", conv.messages[1].text)
    assert m, conv.messages[1].text
    first, last = m.groups()
    full = f"{first} {last}"
    call = conv.messages[2].tool_calls[0]
    assert call.arguments == {"full_name": full, "note": f"caller is {full}"}
    assert json.loads(call.raw_arguments or "") == call.arguments
    tool = json.loads(conv.messages[3].text)
    assert tool["name"] == {"first_name": first, "last_name": last}
    assert f"Thanks {full}." in conv.messages[4].text
    assert conv.references[0].message.text == f"Sorry {full}, no."
    # The other person has another surrogate, and no raw value is left anywhere.
    other = re.search(r"\. (\w+ \w+) from billing", conv.messages[4].text)
    assert other and other.group(1) != full and first not in other.group(1)
    dumped = result.model_dump_json()
    for raw in ("Tessa", "Okafor", "tessa.okafor2291", "KT4RW8", "John Carter"):
        assert raw not in dumped
    code = tool["reservations"][0]
    assert re.fullmatch(r"[A-Z]{2}\d[A-Z]{2}\d", code) and code in conv.messages[1].text
    assert result.entities["PERSON"] == 2 and result.residual == 0


def test_many_people_never_share_a_surrogate(deid: Deidentifier) -> None:
    names = ["Alice Walker", "Bruno Mars", "Chen Wei", "Dmitri Volkov", "Emma Stone",
             "Farah Khan", "Gustav Larsson", "Hiro Tanaka", "Ines Garcia",
             "Jonas Berg"]  # fmt: skip
    text = " ".join(f"I met {n} on Monday." for n in names)
    out = _one(deid, text)
    found = re.findall(r"I met (\w+) (\w+) on", out)
    assert len(found) == len(names)
    assert len({f for f, _ in found}) == len(names) and len({s for _, s in found}) == len(names)
    assert not any(n.split()[0] in out for n in names)


def test_surrogate_depends_on_type_index_and_seed_only() -> None:
    # The generator never sees the value: two different names at the same index, same salt,
    # get the same surrogate; another key or salt gives another one.
    def surrogate(name: str, key: bytes = KEY, salt: str = "s") -> str:
        table = EntityTable(key, salt)
        table.add([("PERSON", name, None)])
        return table.surrogate("PERSON", name)

    assert surrogate("Tessa Okafor") == surrogate("Ann Lee")
    assert surrogate("Tessa Okafor") != surrogate("Tessa Okafor", key=b"other")
    assert surrogate("Tessa Okafor") != surrogate("Tessa Okafor", salt="t")
    table = EntityTable(KEY, "s")
    table.add([("PERSON", "Tessa Okafor", None), ("EMAIL_ADDRESS", "a@b.com", None)])
    assert table.placeholder("PERSON", "Tessa Okafor") == "PERSON_1"
    assert table.placeholder("EMAIL_ADDRESS", "a@b.com") == "EMAIL_ADDRESS_1"


def test_canonicalisation_joins_mentions(deid: Deidentifier) -> None:
    out = _one(
        deid,
        "Dr. Tessa Okafor wrote to TESSA.OKAFOR@EXAMPLE.ORG. "
        "Later tessa.okafor@example.org wrote again. "
        "Tessa said hi, and Ms. Okafor agreed.",
    )
    emails = re.findall(r"[\w.]+@[\w.]+\w", out)
    assert len(emails) == 2 and emails[0].lower() == emails[1].lower()
    m = re.match(r"\w+\. (\w+) (\w+) wrote", out)  # honorifics are replaced too (TITLE)
    assert m, out
    assert f"{m.group(1)} said hi" in out and re.search(rf"\w+\. {m.group(2)} agreed", out)
    assert "Tessa" not in out and "Okafor" not in out


def test_formats_are_kept(deid: Deidentifier) -> None:
    text = (
        "Card 4111 1111 1111 1111, IBAN GB82WEST12345698765432, call +1 (415) 555-0132, "
        "write to jane.doe@gmail.com, server 10.20.30.40, "
        "see https://shop.example.com/u/88231?id=7. "
        "Born on 1990-04-05, she flew on 2024-05-20 and again on 2024-06-02."
    )
    out = _one(deid, text)
    card = re.search(r"Card ([\d ]+),", out)
    assert card and re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", card.group(1))
    assert _luhn_ok(card.group(1).replace(" ", "")) and card.group(1) != "4111 1111 1111 1111"
    iban = re.search(r"IBAN (\w+),", out)
    assert iban and iban.group(1).startswith("GB") and iban_ok(iban.group(1))
    assert iban.group(1) != "GB82WEST12345698765432"
    assert re.search(r"call \+\d \(\d{3}\) \d{3}-\d{4},", out) and "555-0132" not in out
    assert re.search(r"write to [\w.]+@example\.(com|org|net),", out) and "jane.doe" not in out
    assert re.search(r"server (192\.0\.2|198\.51\.100|203\.0\.113)\.\d+,", out)
    assert "88231" not in out and "shop.example.com" not in out
    dates = re.findall(r"\d{4}-\d{2}-\d{2}", out)
    assert len(dates) == 3 and dates == sorted(dates)  # dates keep their order
    assert not {"1990-04-05", "2024-05-20", "2024-06-02"} & set(dates)


def test_kept_types_and_times(deid: Deidentifier) -> None:
    out = _one(deid, "Please answer in English. The meeting is at 10:30 AM, says Jonas Berg.")
    assert "in English" in out and "10:30 AM" in out and "Jonas" not in out


def test_durations_and_seasons_are_not_dates(deid: Deidentifier) -> None:
    text = (
        "Kasimir Oyelaran met me on March 3, 2021. The course takes 6 weeks, ran every "
        "summer, and each session lasts 45 minutes."
    )
    found = {text[d.start : d.end] for d in deid.detector.detect(text)}
    assert "every summer" in found  # detected as a date, and kept as one that dates nothing
    out = _one(deid, text)
    assert "Kasimir" not in out and "March 3, 2021" not in out
    for kept in ("6 weeks", "every summer", "45 minutes"):
        assert kept in out


def test_what_only_the_model_said_is_kept(deid: Deidentifier) -> None:
    """Names, works, places and years that only the assistant brought in are its statements
    about the world, not the user's data: they stay, unless an input shares a word with them."""
    asked = _user("Hi, I'm Marisol Quintero. Which film about two brothers running a diner won?")
    answer = Message(
        role="assistant",
        content=(
            "Hello Marisol! You may mean Salt and Embers, a 1987 film directed by Edvard "
            "Lindqvist and set in Marseille. Write to press@lindqvistfilms.com."
        ),
    )
    out = deid.deidentify(Conversation(messages=(asked, answer)))
    assert out.conversation is not None and out.residual == 0
    user, reply = (m.text for m in out.conversation.messages)
    assert "Marisol" not in user + reply  # the user's own name, echoed by the model
    for introduced in ("Edvard Lindqvist", "Marseille", "1987"):
        assert introduced in reply
    assert "press@lindqvistfilms.com" not in reply  # contacts are replaced wherever they stand

    # Once an input names him too, he may be someone the user knows: replaced everywhere.
    later = _user("wait, edvard lindqvist is my neighbour")
    again = deid.deidentify(Conversation(messages=(asked, answer, later))).conversation
    assert again is not None
    assert "Lindqvist" not in again.messages[1].text and "Marseille" in again.messages[1].text

    everything = Deidentifier(key=KEY, detector=deid.detector, keep_introduced=False)
    replaced = everything.deidentify(Conversation(messages=(asked, answer))).conversation
    assert replaced is not None
    assert "Edvard Lindqvist" not in replaced.messages[1].text

    # OpenAssistant's answers were written by volunteers: what they say is theirs, not a model's.
    people = Conversation(
        messages=(asked, answer),
        provenance=Provenance(source_format="oasst", source_file="trees.jsonl", record=1),
    )
    volunteer = deid.deidentify(people).conversation
    assert volunteer is not None and "Edvard Lindqvist" not in volunteer.messages[1].text


def test_nationalities_and_religions_become_others_of_their_kind(deid: Deidentifier) -> None:
    from deploysim.privacy.surrogates import FAITHS, NATIONS

    out = _one(deid, "I am Cambodian, we are proud Muslims. Reply in Spanish, please.")
    assert "Cambodian" not in out and "Muslim" not in out and "Reply in Spanish," in out
    nation = re.search(r"I am (\w+),", out)
    faith = re.search(r"proud (\w+)s\.", out)
    assert nation and nation.group(1) in NATIONS
    assert faith and faith.group(1) in FAITHS
    assert deid.keep == frozenset()
    kept = Deidentifier(key=b"k", keep={"NRP"}, detector=deid.detector)
    assert "I am Cambodian" in _one(kept, "I am Cambodian.")


def test_secrets_ids_and_addresses(deid: Deidentifier) -> None:
    text = (
        "My key is sk-proj-4fG7hJ9kL2mN5pQ8rS1tU3vW6xY0zA and AWS AKIAIOSFODNN7EXAMPLE. "
        "User ID ava_ng_5521, order #W2378156, device 00:1A:2B:3C:4D:5E. "
        "I live at 418 Larchmont Lane, Apt. 12, Austin, TX 78750."
    )
    out = _one(deid, text)
    for raw in ("4fG7hJ9kL2", "IOSFODNN7", "ava_ng_5521", "W2378156", "3C:4D:5E", "418 Larchmont",
                "Apt. 12,", "Austin", "78750"):  # fmt: skip
        assert raw not in out, raw
    assert re.search(r"sk-proj-\w+", out) and re.search(r"#[A-Z]\d{7}", out)
    assert re.search(r"\b[a-z]{3}_[a-z]{2}_\d{4}\b", out)  # the id keeps its shape


def test_metadata_and_source_id(deid: Deidentifier) -> None:
    conv = Conversation(
        messages=(_user("hello"),),
        provenance=Provenance(
            source_format="openai",
            source_file="logs.jsonl",
            record=3,
            source_id="conv-123",
            metadata={
                "user_id": "u-99",
                "org_id": "org-7",
                "email": "a@b.com",
                "ip_address": "1.2.3.4",
                "user_agent": "Mozilla",
                "title": "Trip for Ruth Okafor",
                "model": "gpt-4o",
            },
        ),
    )
    result = deid.deidentify(conv)
    prov = result.conversation.provenance if result.conversation else None
    assert prov is not None and prov.source_id == pseudonym("conv-123", KEY)
    assert set(prov.metadata) == {"title", "model"} and "Ruth" not in str(prov.metadata)
    assert result.dropped_metadata_keys == 5


class _LeakyDetector:
    """Finds 'secret' in original texts, and on the audit a name the first pass missed."""

    def __init__(self) -> None:
        self.calls = 0

    def is_common(self, word: str) -> bool:
        return False

    def detect_many(self, texts: Sequence[str]) -> list[tuple[Detection, ...]]:
        self.calls += 1
        out: list[tuple[Detection, ...]] = []
        for t in texts:
            token = "secret" if self.calls == 1 else "Zed"
            i = t.find(token)
            out.append(() if i < 0 else (Detection(i, i + len(token), "PERSON", 1.0, "stub"),))
        return out


@pytest.mark.parametrize("strict", [False, True])
def test_residual_audit_and_strict(strict: bool) -> None:
    deid = Deidentifier(key=KEY, strict=strict, detector=_LeakyDetector())  # type: ignore[arg-type]
    result = deid.deidentify(Conversation(messages=(_user("the secret was told by Zed"),)))
    assert result.residual == 1 and result.residual_types == {"PERSON": 1}
    assert result.dropped is strict
    assert (result.conversation is None) is strict


def test_deterministic_and_keyed(deid: Deidentifier, detector: Detector) -> None:
    conv = _support_conversation()
    assert deid.deidentify(conv) == deid.deidentify(conv)
    other = Deidentifier(key=b"another-key", detector=detector).deidentify(conv)
    assert other.conversation != deid.deidentify(conv).conversation


def test_no_network_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def loopback(host: Any) -> bool:
        return str(host).startswith(("127.", "::1", "localhost")) or host in ("", None)

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or loopback(host):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError("network disabled in tests")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if loopback(host):
            return real_getaddrinfo(host, *args, **kwargs)
        attempts.append(host)
        raise socket.gaierror("network disabled in tests")

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    fresh = Detector()
    texts = [
        "Mail jane.doe@gmail.com or ops@company.co.uk, see https://www.example.org/a?id=3.",
        "Contact me at first.last@uni.edu.au, visit http://my-site.io/profile/123",
    ]
    found = fresh.detect_many(texts)
    types = {d.entity_type for dets in found for d in dets}
    assert {"EMAIL_ADDRESS", "URL"} <= types
    out = Deidentifier(key=KEY, detector=fresh).deidentify(
        Conversation(messages=tuple(_user(t) for t in texts))
    )
    assert out.conversation is not None and "jane.doe" not in out.conversation.messages[0].text
    assert attempts == []


# ---------------------------------------------------------------------------------------------
# Real tau-bench trajectories
# ---------------------------------------------------------------------------------------------


def _tau() -> list[Conversation]:
    from deploysim.ingest.tau_bench import convert

    return [f.conversation for rec in json.loads(TAU.read_text()) for f in convert(rec)]


_PII_KEYS = {"first_name": "name", "last_name": "name", "email": "email", "address1": "address",
             "zip": "zip", "user_id": "user_id", "payment_id": "payment", "id": "payment",
             "reservation_id": "reservation", "reservations": "reservation"}  # fmt: skip


def _pairs(old: Any, new: Any, key: str = "") -> Iterator[tuple[str, str, str]]:
    """(kind, old, new) of the personal JSON leaves of two same-shaped JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        assert len(old) == len(new)
        for (k, v), (k2, v2) in zip(old.items(), new.items(), strict=True):
            if k.startswith(("credit_card_", "gift_card_", "certificate_")):
                yield "payment", k, k2
            yield from _pairs(v, v2, k)
    elif isinstance(old, list) and isinstance(new, list):
        for v, v2 in zip(old, new, strict=True):
            yield from _pairs(v, v2, key)
    elif isinstance(old, str) and key in _PII_KEYS:
        yield _PII_KEYS[key], old, new


def _json_values(conv: Conversation) -> Iterator[Any]:
    for m in conv.messages:
        if m.role == "tool" and m.text.startswith(("{", "[")):
            yield json.loads(m.text)
        for c in m.tool_calls:
            yield c.arguments


@pytest.mark.slow
def test_tau_bench_replaced_consistently(deid: Deidentifier) -> None:
    convs = _tau()
    results = deid.deidentify_many(convs)
    checked: dict[str, int] = {}
    for conv, result in zip(convs, results, strict=True):
        new = result.conversation
        assert new is not None and len(new.messages) == len(conv.messages)
        mapping: dict[str, set[str]] = {}
        for a, b in zip(_json_values(conv), _json_values(new), strict=True):
            for kind, old, sur in _pairs(a, b):
                if len(old) >= 3:
                    mapping.setdefault(old, set()).add(sur)
                    checked[kind] = checked.get(kind, 0) + 1
        dumped = result.model_dump_json()
        for old, surs in mapping.items():
            # One surrogate per value, in every tool call and tool result ...
            assert len(surs) == 1 and old not in surs, (old, surs)
            assert re.search(rf"(?<![\w@.]){re.escape(old)}(?![\w@])", dumped) is None, old
            # ... and in the messages: where the value was, its surrogate is.
            (sur,) = surs
            for m0, m1 in zip(conv.messages, new.messages, strict=True):
                if re.search(rf"(?<![\w@.]){re.escape(old)}(?![\w@])", m0.text):
                    assert re.search(rf"\b{re.escape(sur)}\b", m1.text), (old, sur, m1.text)
    assert set(checked) == set(_PII_KEYS.values()), checked


@pytest.mark.parametrize(
    ("text", "value", "etype"),
    [
        ("And your family name? Quennell", "Quennell", "PERSON"),
        ("his mother's maiden name is halvorsen", "halvorsen", "PERSON"),
        (
            "need to reset the router today. my name is petra lindqvist.",
            "petra lindqvist",
            "PERSON",
        ),
        ("we moved here years ago, i grew up in portugal", "portugal", "LOCATION"),
        ("Quorvex is a Dutch multinational insurance company.", "Quorvex", "ORGANIZATION"),
        ('ansel: "where were you?" greta:"at my uncle\'s farm".', "greta", "PERSON"),
    ],
)
def test_names_places_and_organisations_in_context(
    detector: Detector, text: str, value: str, etype: str
) -> None:
    (found,) = detector.detect_many([text])
    assert (value, etype) in {(text[d.start : d.end], d.entity_type) for d in found}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Orvella Ltd. has filed its accounts.", "Orvella Ltd."),  # legal suffix
        ("Check the Brightwater Analytics website first.", "Brightwater Analytics"),
        ("Green Harbour Partners was founded in 2009.", "Green Harbour Partners"),
        ("She is the co-founder of Quillfeather Labs.", "Quillfeather Labs"),
        ("The shop later became Solvanta in 2015.", "Solvanta"),
        ("Talk to Odile Marchetti from Blue Fern Capital about it.", "Blue Fern Capital"),
        ("He stayed with Trellisoft in Ostvik until spring.", "Ostvik"),  # a place after an org
        ("I forwarded it to my Zentrova account manager.", "Zentrova"),
        ("Ingrid van Loon will join the call.", "Ingrid van Loon"),  # a name particle
        ("Tamsin and Okafor were nurses at the clinic.", "Okafor"),  # a job
        ("Zdenka is always late. I keep telling her.", "Zdenka"),  # a pronoun refers back
        ('"Go home," said Marta to Ilse.', "Ilse"),
        ("Priya Raman, the lead pharmacist, signed it.", "lead pharmacist"),  # appositive
        ("My aunt lives on Hollins Wood 12.", "Hollins Wood 12"),
        ("Nobody picks up on 47 902113", "47 902113"),
        ("dana whitlock\nmarsh-ellery\n22 quay street", "marsh-ellery"),  # a card's firm line
        ("olga brandt's lawyer called from bergen again today", "olga brandt"),  # lower case
        # A list after a colon: the model finds some of its names (of two kinds here).
        ("Our suppliers: Quarkbyte, Velmora Hext and T Osgrove Price.", "T Osgrove Price"),
        ("Suppliers: Quarkbyte, Velmora Systems and J Hallett Partners.", "J Hallett Partners"),
    ],
)
def test_names_with_a_cue_but_no_ner(detector: Detector, text: str, value: str) -> None:
    (found,) = detector.detect_many([text])
    start = text.index(value)
    assert any(d.start <= start and start + len(value) <= d.end for d in found), found


@pytest.mark.parametrize(
    "text",
    [
        '  href: "https://example.org/docs",',  # indented code, not a speaker
        "We had turkey and chad dressing.",  # lower-case words that are also countries
        "This is a company that sells shoes.",  # a pronoun, not an organisation
        "My name is not important here.",  # stop words end a name
        "Build the Life of Your Dreams and reach Your Goals",  # title case, not a brand
        "Pipenv is a package manager.",  # a job that is also software
        "please keep requesting e waste boxes",  # "e waste" is no middle initial
        "The Python website has the docs.",  # an ordinary word before "website"
        "The firm later became profitable in 2001.",
        "arduino uno adalah papan mikrokontroler",  # lower case, but not English
        "Results: the model improved.\nLearnings: test earlier.\nUpdated: today",  # headings
        "Press Ctrl + H to open the Find and Replace box, then click Replace All.",  # not people
        "| Background of the Study | 12 |",  # a table cell
        "if (Widgets.count > 3) { render(); }",  # a member access Presidio cuts to a URL
        "-These drawings have a cheerful tone.",  # a capitalised stop word, not a group
    ],
)
def test_context_rules_leave_ordinary_text(detector: Detector, text: str) -> None:
    (found,) = detector.detect_many([text])
    words = {text[d.start : d.end] for d in found}
    assert not words & {
        "href", "turkey", "chad", "This", "not", "not important", "Dreams", "Goals", "Pipenv",
        "requesting e waste", "Python", "profitable", "adalah", "arduino", "uno", "Results",
        "Learnings", "Updated", "Find", "Replace", "Background", "Widgets.co", "These",
    }, found  # fmt: skip


def test_a_list_of_names_after_a_colon(detector: Detector) -> None:
    # The list rule alone, without the model (which tags capitalised words at whim).
    text = "Suppliers: Demora, Velmora Hext and T Osgrove Price."
    found = PostProcess(text, [], detector.is_common).run()
    assert [(text[d.start : d.end], d.entity_type) for d in found] == [
        ("Demora", "ORGANIZATION"),
        ("Velmora Hext", "ORGANIZATION"),
        ("T Osgrove Price", "ORGANIZATION"),
    ]
    for ordinary in ("Colours: Teal, Mauve and Ochre.", "Suppliers: Demora, Velmora and Steel."):
        assert PostProcess(ordinary, [], detector.is_common).run() == []


def test_months_in_full_stay_in_full(deid: Deidentifier) -> None:
    # A four-letter month ("June", "July") used to be cut to four letters of another ("Octo").
    full = {m.capitalize() for m in _MONTH_NAMES.split()}
    for text in ("The lease ends on June 14, 2027.", "We met on 3rd July 2019 at noon."):
        out = _one(deid, text)
        month = next(w.strip(",.") for w in out.split() if w.strip(",.") in full)
        assert month in out and len(month) >= 3


_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
