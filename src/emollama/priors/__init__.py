"""Face priors: where they come from (sources), how they are keyed, extracted, cached and turned into AGR attributes.

Training and evaluation read priors through one protocol, `emollama.priors.source.PriorSource` (implementations in
`providers.py` and `npz.py`); `emollama prepare` writes the cache (`prepare.py`, `cache.py`, `frames.py`).
"""
