"""Word error rate with Kaldi compute-wer and NIST sclite alignment semantics."""
