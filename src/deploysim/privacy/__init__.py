"""De-identification of logged conversations (method.md §2; docs/design/privacy.md).

The package's modules, each importing only public names of the others:

* :mod:`~deploysim.privacy.words`: the word lists (first names, countries, nationalities...);
* :mod:`~deploysim.privacy.rules`: the regex rules built on them and :class:`Detection`;
* :mod:`~deploysim.privacy.streets`: street words and the street rules;
* :mod:`~deploysim.privacy.world`: rules for names, streets and places of other countries;
* :mod:`~deploysim.privacy.places`: the gazetteer of the world's towns (GeoNames), countries in
  every language (CLDR) and regions (ISO 3166-2);
* :mod:`~deploysim.privacy.post`: post-processing of one text's detections and the merge;
* :mod:`~deploysim.privacy.detector`: :class:`Detector` (spaCy NER, Presidio, the rules);
* :mod:`~deploysim.privacy.surrogates`: the per-conversation entity table and surrogates;
* :mod:`~deploysim.privacy.deid`: :class:`Deidentifier`, :class:`DeidResult`, ``DEID_VERSION``;
* :mod:`~deploysim.privacy.evaluation`: measurement on span-labelled data (dev and test parts).

``from deploysim.privacy import Deidentifier`` is the entry point for ingest.
"""

from __future__ import annotations

from deploysim.privacy.deid import DEFAULT_KEEP, DEID_VERSION, Deidentifier, DeidResult
from deploysim.privacy.detector import Detector
from deploysim.privacy.rules import Detection

__all__ = ["DEFAULT_KEEP", "DEID_VERSION", "DeidResult", "Deidentifier", "Detection", "Detector"]
