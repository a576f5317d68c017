"""``python -m deploysim``."""

from deploysim.cli import main

main()
