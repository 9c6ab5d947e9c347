"""Decoding graphs: H, C, L, G and their composition into HCLG."""
