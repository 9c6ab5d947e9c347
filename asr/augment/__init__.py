"""Data augmentation of Kaldi data dirs (``asr augment-data-dir``).

Kaldi's standard perturbations on any data dir: speed (``sp0.9-``, ``sp1.1-``; alignments
and CTMs transformed to match), volume, reverberation in rooms simulated with
pyroomacoustics' image method (``rvb1-``), additive noise at a chosen SNR (coloured noise,
babble from the dir's other utterances, music-like tones) and telephone channels.

Modules: ``perturb`` (the signal operations), ``rooms`` (simulated room impulse
responses), ``noise`` (noise sources), ``alignments`` (CTM and frame alignments under a
speed change), ``data_dir`` (the command's work: plan, parallel jobs, output dir).
"""
