"""Word lattices: Kaldi text lattice I/O, word-lattice construction from the decoder's raw
lattice, n-gram LM rescoring, and LM-weight / insertion-penalty scoring (Kaldi score.sh)."""
