"""Log mel filterbank features (kaldi-native-fbank), CMVN, Kaldi ark/scp output."""
