"""N-gram language models: counting, modified Kneser-Ney, pruning, ARPA I/O, perplexity."""
