"""File formats shared by every stage: atomic writes, Kaldi text tables, integer-vector arks."""
