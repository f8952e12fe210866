"""zmongo benchmarks: zmongo against hand-written pymongo and its peers.

Run ``python -m bench`` (or ``python bench/run.py``); see bench/README.rst.
"""
