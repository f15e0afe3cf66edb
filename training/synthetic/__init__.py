"""Synthetic geometry curriculum: problems with diagrams, checked gold theorem steps and held-out splits.

`python -m training.synthetic --n 20000 --seed 0 --out DIR` writes it (generate.py); families.py holds
the theorem families, drawing.py the diagrams, phrasing.py the question wordings and splits.py what
each test split holds out.
"""
