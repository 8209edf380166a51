"""`emollama train-expression`: the learned expression model of the analyzer, trained on FER2013.

Stages: ``crops`` (the analyzer's face finder + `expression_input` on every image, cached and resumable),
``loop`` (seeded, resumable training with batch augmentation), ``calibrate`` (temperature scaling + ECE) and the
export of the weights the package ships.
"""
