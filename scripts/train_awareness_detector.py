"""Retrain the embedded evaluation-likeness detector (src/deploysim/data/awareness_detector.*).

Usage: ``python scripts/train_awareness_detector.py train [--data-dir ../shared/data]
[--cache /tmp/aw.npz]`` (or ``validate``). The same as ``python -m
deploysim.awareness_detector``; a retrained detector has a new hash, stored with every
awareness result it measures.
"""

from deploysim.awareness_detector import main

if __name__ == "__main__":
    main()
