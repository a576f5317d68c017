"""The word lists of the PII detector: first names, honorifics, occupations, countries,
nationalities and religions (:mod:`deploysim.privacy_rules` builds its rules from them;
:mod:`deploysim.privacy_surrogates` draws surrogates of a kind from them).

Hand-made from general knowledge, not from any evaluation data: they must hold for real chat
logs, and the labelled PII set is the test of them.
"""

from __future__ import annotations

__all__ = [
    "COUNTRIES",
    "FIRST_NAMES",
    "HONORIFICS",
    "NATIONALITIES",
    "OCCUPATIONS",
    "RELIGIONS",
    "words",
]


def words(text: str) -> list[str]:
    """The whitespace-separated words of a word-list literal."""
    return text.split()


FIRST_NAMES = frozenset(
    words(
        """
    aaron abigail adam adrian aidan alan albert alex alexander alexandra alice alicia alison
    allison alma amanda amber amelia amy ana andrea andrew angela anna anne anthony antonio
    april ariana arthur ashley austin barbara benjamin betty beverly bill billy bob bobby
    bonnie brad bradley brandon brenda brian brittany bruce bryan caitlin calvin carl carlos
    carol caroline carolyn catherine charles charlie charlotte cheryl chloe chris christian
    christina christine christopher cindy claire clara colin connor craig crystal cynthia
    daisy dale daniel danielle david dean deborah debra denise dennis derek diana diane
    donald donna doris dorothy douglas dylan edward elena eli elijah elizabeth ella ellen
    emily emma eric erica erik erin ethan eva evelyn frances frank gabriel gary george
    gerald gladys gloria grace greg gregory hannah harold harry heather helen henry holly
    ian isaac isabel isabella jack jacob jacqueline james jamie jane janet janice jason jean
    jeffrey jennifer jeremy jerry jesse jessica jill jim jimmy joan jodi joe joel john
    johnny jonathan jordan jose joseph joshua joyce juan judith judy julia julian julie
    justin karen kate katherine kathleen kathryn katie keith kelly kenneth kevin kim
    kimberly kyle larry laura lauren lawrence leah leo leon linda lisa logan lori louis
    lucas lucy luis luke madison margaret maria marie marilyn mario mark martha martin mary
    mason matthew megan melissa mia michael michelle mike mila molly monica nancy natalie
    nathan nathaniel nicholas nicole noah norma olivia oliver oscar pamela patricia patrick
    paul paula peter philip phillip rachel ralph randy raymond rebecca richard rita robert
    roberto robin roger ronald rose roy russell ruth ryan samantha samuel sandra sara sarah
    scott sean sharon shirley sofia sophia sophie stephanie stephen steven susan sylvia
    tammy teresa terry theresa thomas tiffany timothy tina todd tom tony tracy travis tyler
    valerie vanessa victor victoria vincent virginia walter wayne wendy william willie
    zachary zak zoe
    """
    )
)
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
    belizian beninese bolivian bosnian brazilian british bulgarian burmese cambodian
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
    shiites shii shiis saudis
    """
    )
)
RELIGIONS = frozenset(
    words(
        """
    muslim christian jewish jew hindu buddhist sikh catholic protestant sunni shia shiite shii
    """
    )
)
