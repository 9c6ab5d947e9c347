import numpy as np
import pytest
import torch

from asr.errors import AlignmentError
from asr.train.data import IGNORE, epoch_order, get_batch, load_corpus, make_schedule


def toy_corpus(lengths, dim=2):
    feats, ali = [], {}
    for u, n in enumerate(lengths):
        f = np.zeros((n, dim), np.float32)
        f[:, 0] = u  # utterance id
        f[:, 1] = np.arange(n)  # frame index
        feats.append((f"u{u}", f))
        ali[f"u{u}"] = (100 * u + np.arange(n)).astype(np.int32)
    return load_corpus(feats, ali, num_pdfs=100 * len(lengths))


def stream_sequences(corpus, sched):
    """Reassemble, per stream, the (utt, frame, target) seen at each step."""
    out = []
    for b in range(len(sched)):
        x, y, keep = get_batch(corpus, sched, b)
        out.append((x.numpy(), y.numpy(), keep.numpy()))
    return out


def test_output_delay_bookkeeping():
    corpus = toy_corpus([7])
    d, T = 3, 4
    sched = make_schedule(corpus.lengths, streams=1, chunk=T, delay=d)
    assert len(sched) == 3  # 7 + 3 = 10 steps → 3 chunks of 4
    steps = stream_sequences(corpus, sched)
    x = np.concatenate([s[0][0] for s in steps])  # [12, 2]
    y = np.concatenate([s[1][0] for s in steps])
    # input: frames 0..6, then the last frame repeated d times, then padding
    assert x[:10, 1].tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6, 6]
    # target of frame t at step t + d; no target in the first d steps or in the padding
    assert y[:d].tolist() == [IGNORE] * d
    assert y[d:10].tolist() == list(range(7))
    assert y[10:].tolist() == [IGNORE, IGNORE]
    assert sched.num_target_frames == 7


def test_streams_reset_and_carry():
    corpus = toy_corpus([5, 9, 3, 6])
    sched = make_schedule(corpus.lengths, streams=2, chunk=4, delay=1, order=np.array([2, 0, 3, 1]))
    steps = stream_sequences(corpus, sched)
    for j in range(2):
        prev_utt = None
        for b, (x, y, keep) in enumerate(steps):
            utt = sched.utt[b, j]
            if utt < 0:
                assert not keep[j] and (y[j] == IGNORE).all()
                continue
            # a new utterance resets the state, a continuing one keeps it
            assert keep[j] == (utt == prev_utt)
            assert (x[j, :, 0] == utt).all()
            prev_utt = utt
    # every frame's target is presented exactly once, over all streams and batches
    ys = np.concatenate([s[1].ravel() for s in steps])
    ys = np.sort(ys[ys != IGNORE])
    assert ys.tolist() == sorted(corpus.all_targets().tolist())
    # utterances are given out in order to the stream that frees up first
    assert sched.utt[0].tolist() == [2, 0]
    assert sched.utt[1].tolist() == [3, 0]


def test_padding_is_masked_from_loss_and_gradient():
    """Padding steps (and steps past an utterance's end) contribute no loss and no gradient."""
    from asr.nnet import build_model

    torch.manual_seed(0)
    corpus = toy_corpus([3, 6])
    sched = make_schedule(corpus.lengths, streams=2, chunk=8, delay=1)
    x, y, keep = get_batch(corpus, sched, 0)
    assert (y[0, 4:] == IGNORE).all() and (y[1, 7:] == IGNORE).all()
    model = build_model({"family": "lstmp", "num_layers": 1, "cell_dim": 4, "proj_dim": 2}, 2, 200)
    x = x.clone().requires_grad_(True)
    logits, _ = model(x)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 200), y.reshape(-1), ignore_index=IGNORE)
    loss.backward()
    assert (x.grad[0, 4:] == 0).all() and (x.grad[1, 7:] == 0).all()
    assert (x.grad[0, :4] != 0).any()


def test_epoch_order_seeded():
    a, b = epoch_order(50, 1, 0), epoch_order(50, 1, 0)
    assert (a == b).all()
    assert not (epoch_order(50, 1, 1) == a).all()
    assert sorted(a.tolist()) == list(range(50))


def test_load_corpus_skips_and_counts(caplog):
    feats = [("a", np.zeros((4, 2), np.float32)), ("b", np.zeros((5, 2), np.float32)),
             ("c", np.zeros((3, 2), np.float32))]
    ali = {"a": np.array([1, 1, 2, 2]), "b": np.array([1, 2, 3])}
    corpus = load_corpus(feats, ali, num_pdfs=4)
    assert corpus.utt_ids == ["a"]
    assert "skipped 2 utterance(s): 1 without alignment, 1 with mismatched length" in caplog.text
    with pytest.raises(AlignmentError, match="utterance a: pdf id 2 out of range"):
        load_corpus(feats[:1], ali, num_pdfs=2)
    with pytest.raises(AlignmentError, match="no utterance"):
        load_corpus(feats[2:], ali, num_pdfs=4)


def _toy_dir(tmp_path, n_utts=9):
    import train_fixtures

    return train_fixtures.make_data(tmp_path, "train", n_utts, 1, num_pdfs=6, dim=3)


def test_feature_set_streams_the_same_batches_as_memory(tmp_path):
    """Features read from the arks on demand give the batches of the in-memory corpus, and
    N rank slices of the streams put together give the full batch."""
    from asr.features.reader import FeatureReader
    from asr.io.int_ark import iter_int_ark, read_int_ark
    from asr.train.data import BatchReader, Prefetcher, open_feature_set

    d, ali = _toy_dir(tmp_path)
    reader = FeatureReader(d, cmvn="none")
    streamed = open_feature_set(reader, iter_int_ark(ali), 6)
    memory = load_corpus(FeatureReader(d, cmvn="none"), read_int_ark(ali), 6)
    assert streamed.utt_ids == memory.utt_ids and (streamed.lengths == memory.lengths).all()
    sched = make_schedule(streamed.lengths, streams=4, chunk=5, delay=2, order=epoch_order(len(streamed), 1, 0))
    full = list(BatchReader(memory, sched))
    halves = [list(Prefetcher(BatchReader(streamed, sched, lo, lo + 2), depth=2)) for lo in (0, 2)]
    assert len(full) == len(halves[0]) == len(halves[1]) == len(sched)
    counts = sched.valid_counts()
    for b, (f, h0, h1) in enumerate(zip(full, *halves)):
        assert torch.equal(f.x, torch.cat([h0.x, h1.x])) and torch.equal(f.y, torch.cat([h0.y, h1.y]))
        assert torch.equal(f.keep, torch.cat([h0.keep, h1.keep]))
        assert counts[b] == int((f.y != IGNORE).sum())
    assert sched.share(0, 2)[0] + sched.share(2, 4)[0] == len(streamed)


def test_feature_set_skips_and_counts(tmp_path, caplog):
    """Index time: no alignment / wrong length are counted; read time: an utterance whose
    ark entry is broken is skipped (no target) and counted, training goes on."""
    from asr.features.reader import FeatureReader
    from asr.io.int_ark import read_int_ark
    from asr.train.data import BatchReader, open_feature_set

    d, ali = _toy_dir(tmp_path)
    alis = read_int_ark(ali)
    utts = sorted(alis)
    del alis[utts[0]]
    alis[utts[1]] = alis[utts[1]][:-3]
    data = open_feature_set(FeatureReader(d, cmvn="none"), alis.items(), 6)
    assert "skipped 2 utterance(s): 1 without alignment, 1 with mismatched length" in caplog.text
    assert f"skipped utterance {utts[0]}: no alignment" in caplog.text  # each one named (asr.failures)
    assert data.utt_ids == utts[2:]
    with pytest.raises(AlignmentError, match=r"2 of 9 utterances failed, more than --max-failures 0.1 "
                       rf"\(first: {utts[1]}: \d+ frames but \d+ alignment entries\)"):
        open_feature_set(FeatureReader(d, cmvn="none"), alis.items(), 6, max_failures=0.1)
    scp = (d / "feats.scp").read_text().splitlines()
    broken = utts[4]
    (d / "feats.scp").write_text("".join(f"{line.split()[0]} {d / 'nothing.ark'}:7\n" if line.startswith(broken)
                                         else line + "\n" for line in scp))
    # without utt2num_frames the length needs the matrix: unreadable at index time
    open_feature_set(FeatureReader(d, cmvn="none"), alis.items(), 6)
    assert "skipped 3 utterance(s): 1 without alignment, 1 with mismatched length, 0 empty, 1 unreadable" in caplog.text
    # with utt2num_frames it is found out while training
    (d / "utt2num_frames").write_text("".join(f"{u} {len(read_int_ark(ali)[u])}\n" for u in utts))
    data = open_feature_set(FeatureReader(d, cmvn="none"), alis.items(), 6)
    sched = make_schedule(data.lengths, streams=2, chunk=8, delay=0)
    reader = BatchReader(data, sched)
    ys = torch.cat([b.y.reshape(-1) for b in reader])
    assert reader.bad_utterances == [broken]
    assert int((ys != IGNORE).sum()) == data.num_frames - data.lengths[data.utt_ids.index(broken)]
    assert f"utterance {broken}: cannot read" in caplog.text
