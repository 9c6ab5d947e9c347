"""Phone sets, lexicons, HMM topologies and Kaldi lang directories (L.fst)."""
