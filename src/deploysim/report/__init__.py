"""Reports a person can open and files other tools read.

* :func:`write_report` (``deploysim report``): the whole run in one self-contained HTML file;
* :func:`serve` (``deploysim view``): the same page over every prefix, from a local server;
* :func:`write_ingest_report`: the corpus report the demo writes after ingesting;
* exports (see :mod:`deploysim.export`): tidy tables, Inspect ``.eval`` logs, OpenTelemetry
  evaluation events.
"""

from deploysim.report.html import write_ingest_report
from deploysim.report.page import ReportStats, write_report
from deploysim.report.server import serve

__all__ = ["ReportStats", "serve", "write_ingest_report", "write_report"]
