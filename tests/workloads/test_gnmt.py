"""The GNMT workload: beam search checked against independent greedy and teacher-forced
decoders on tiny models, and a smoke run of the small preset."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tests.conftest import final_throughput, reported_settings

tf = pytest.importorskip("tensorflow")

from workloads import gnmt  # noqa: E402  (after the importorskip)

EOS = gnmt.EOS_ID


def tiny_model(vocab: int, units: int = 8, seed: int = 3, eos_bias: float = 0.0) -> gnmt.GNMT:
    """A small model with weights in [-1, 1] (nmt's [-0.1, 0.1] makes a tiny model's logits
    nearly uniform) and optionally a bias towards EOS, so that sentences end."""
    model = gnmt.GNMT(tf, units=units, vocab_size=vocab, seed=seed, compute_dtype=tf.float32,
                      init_scale=1.0)
    if eos_bias:
        bias = np.zeros(vocab, np.float32)
        bias[EOS] = eos_bias
        model.out_bias = tf.constant(bias)
    return model


def sources(batch: int, length: int, vocab: int, seed: int = 5) -> Any:
    return gnmt.synthetic_source(tf, batch=batch, length=length, vocab_size=vocab, seed=seed)


def beam_search(model: gnmt.GNMT, source: Any, *, beam_width: int, max_length: int,
                alpha: float) -> dict[str, np.ndarray]:
    run = tf.function(lambda s: model.beam_search(s, beam_width=beam_width,
                                                  max_length=max_length, alpha=alpha))
    return {key: value.numpy() for key, value in run(source).items()}


def decoder_start(model: gnmt.GNMT, source: Any) -> tuple[Any, ...]:
    """What every decoder starts from (inside a tf.function): the weights, the encoder's
    memory and attention keys, its final states, a zero attention and the row count."""
    w = model.weights()
    memory, states = model.encode(w, source)
    keys = model.attention_keys(w, memory)
    rows = tf.shape(source)[0]
    return w, memory, keys, tuple(states), tf.zeros([rows, model.units]), rows


def greedy(model: gnmt.GNMT, source: Any, max_length: int) -> np.ndarray:
    """A plain greedy decoder over the same model: argmax each step, EOS once finished."""

    @tf.function
    def run(source: Any) -> Any:
        w, memory, keys, states, attention, rows = decoder_start(model, source)
        tokens = tf.fill([rows], gnmt.SOS_ID)
        finished = tf.zeros([rows], tf.bool)
        out = []
        for _ in range(max_length):
            logits, states, attention = model.decoder_step(w, tokens, states, attention,
                                                           memory, keys)
            tokens = tf.where(finished, EOS, tf.argmax(logits, axis=1, output_type=tf.int32))
            finished = tf.logical_or(finished, tokens == EOS)
            out.append(tokens)
        return tf.stack(out, axis=1)
    return run(source).numpy()


def sequence_log_probs(model: gnmt.GNMT, source: Any, tokens: np.ndarray) -> np.ndarray:
    """Teacher forcing: the log-probability of each row of ``tokens`` [N, T] up to and
    including its first EOS (the rest ignored), for source rows [N, S]."""
    steps = tokens.shape[1]

    @tf.function
    def run(source: Any, tokens: Any) -> Any:
        w, memory, keys, states, attention, rows = decoder_start(model, source)
        previous = tf.fill([rows], gnmt.SOS_ID)
        alive = tf.ones([rows], tf.bool)
        total = tf.zeros([rows])
        for t in range(steps):
            logits, states, attention = model.decoder_step(w, previous, states, attention,
                                                           memory, keys)
            logp = tf.gather(tf.nn.log_softmax(logits), tokens[:, t], batch_dims=1)
            total += tf.where(alive, logp, 0.0)
            alive = tf.logical_and(alive, tokens[:, t] != EOS)
            previous = tokens[:, t]
        return total
    return run(source, tf.constant(tokens, tf.int32)).numpy()


def lengths_before_eos(tokens: np.ndarray) -> np.ndarray:
    is_eos = tokens == EOS
    return np.where(is_eos.any(axis=-1), is_eos.argmax(axis=-1), tokens.shape[-1])


def penalty(lengths: np.ndarray, alpha: float) -> np.ndarray:
    return ((5.0 + lengths) / 6.0) ** alpha


def test_the_model_has_gnmt_v2s_shapes() -> None:
    u, vocab = 8, 20
    model = tiny_model(vocab, units=u)
    lstm = [model.enc_fw, model.enc_bw, *model.enc_uni, *model.dec]
    # encoder: bi layer on embeddings, then 2u (fw + bw) -> u, u -> u, u -> u; decoder:
    # every layer reads u inputs plus the u-wide attention context
    assert [x["kernel"].shape[0] - u for x in lstm] == [u, u, 2 * u, u, u] + [2 * u] * 4
    assert all(x["kernel"].shape[1] == 4 * u for x in lstm)
    assert model.out_w.shape == (u, vocab) and model.out_bias is None
    source = sources(2, 5, vocab)
    w = model.weights()
    memory, states = model.encode(w, source)
    assert memory.shape == (2, 5, u) and len(states) == gnmt.LAYERS
    logits, _, attention = model.decoder_step(
        w, tf.fill([2], gnmt.SOS_ID), tuple(states), tf.zeros([2, u]), memory,
        model.attention_keys(w, memory))
    assert logits.shape == (2, vocab) and attention.shape == (2, u)
    # the context is a convex combination of the memory rows
    low, high = tf.reduce_min(memory, axis=1), tf.reduce_max(memory, axis=1)
    assert bool(tf.reduce_all((attention >= low - 1e-6) & (attention <= high + 1e-6)))


def test_beam_width_one_is_greedy_decoding() -> None:
    vocab, max_length = 40, 10
    model = tiny_model(vocab, units=16, eos_bias=0.5)
    source = sources(6, 5, vocab)
    # alpha 0: with nmt's convention (EOS adds no length) a positive alpha nudges a width-1
    # search away from EOS, so only the unpenalised search is exactly greedy
    beam = beam_search(model, source, beam_width=1, max_length=max_length, alpha=0.0)
    expected = greedy(model, source, max_length)
    assert len(np.unique(expected)) > 3  # a real sequence, not one repeated token
    ended = lengths_before_eos(expected)
    assert (ended < max_length).any() and (ended == max_length).any()
    np.testing.assert_array_equal(beam["best_tokens"], expected)
    np.testing.assert_array_equal(beam["best_lengths"], ended)


def test_beam_scores_match_rescoring_and_finished_beams_stop_extending() -> None:
    vocab, width, max_length, alpha = 6, 3, 8, 1.0
    model = tiny_model(vocab)
    source = sources(3, 4, vocab)
    beam = beam_search(model, source, beam_width=width, max_length=max_length, alpha=alpha)
    tokens = beam["tokens"]  # [B, K, T]
    ended = lengths_before_eos(tokens)
    # the case exercises beams finishing early while others go on
    assert (ended < max_length - 1).any() and not beam["finished"].all()
    # a finished beam is only ever followed by EOS, and its length stops growing
    after_eos = np.arange(max_length) > ended[..., None]
    assert (tokens[after_eos] == EOS).all()
    np.testing.assert_array_equal(beam["lengths"], ended)
    np.testing.assert_array_equal(beam["finished"], (tokens == EOS).any(axis=-1))
    # every carried score is the model's probability of the beam's own tokens (so states
    # were reordered with their beams, and finished beams gained no log-probability)
    rescored = sequence_log_probs(model, np.repeat(source.numpy(), width, axis=0),
                                  tokens.reshape(-1, max_length))
    np.testing.assert_allclose(beam["log_probs"].reshape(-1), rescored, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(beam["scores"], beam["log_probs"] / penalty(ended, alpha),
                               rtol=1e-6)
    best = beam["scores"].argmax(axis=1)
    np.testing.assert_array_equal(beam["best_tokens"], tokens[np.arange(3), best])


def reference_beam_search(model: gnmt.GNMT, source: Any, *, width: int, max_length: int,
                          alpha: float) -> list[list[tuple[float, tuple[int, ...]]]]:
    """A plain Python beam search (one hypothesis at a time, eager): per sentence, the final
    beams as (length-normalised score, tokens EOS-padded to max_length), best first."""
    w = model.weights()
    memory, states = model.encode(w, source)
    keys = model.attention_keys(w, memory)

    def normalised(hyp: dict[str, Any]) -> float:
        return hyp["logp"] / ((5.0 + len(hyp["tokens"]) - hyp["finished"]) / 6.0) ** alpha

    results = []
    for row in range(source.shape[0]):
        mem, key = memory[row:row + 1], keys[row:row + 1]
        beams = [{"tokens": (), "logp": 0.0, "finished": False,
                  "state": tuple((h[row:row + 1], c[row:row + 1]) for h, c in states),
                  "attention": tf.zeros([1, model.units])}]
        for _ in range(max_length):
            if all(hyp["finished"] for hyp in beams):
                break
            candidates = []
            for hyp in beams:
                if hyp["finished"]:
                    candidates.append(hyp)
                    continue
                last = hyp["tokens"][-1] if hyp["tokens"] else gnmt.SOS_ID
                logits, state, attention = model.decoder_step(
                    w, tf.constant([last]), hyp["state"], hyp["attention"], mem, key)
                logp = tf.nn.log_softmax(logits)[0].numpy()
                candidates += [{"tokens": hyp["tokens"] + (word,),
                                "logp": hyp["logp"] + float(logp[word]),
                                "finished": word == EOS, "state": state,
                                "attention": attention} for word in range(model.vocab_size)]
            beams = sorted(candidates, key=normalised, reverse=True)[:width]
        results.append([(normalised(hyp), hyp["tokens"] + (EOS,) * (max_length
                                                                   - len(hyp["tokens"])))
                        for hyp in beams])
    return results


def test_beam_search_matches_a_plain_python_beam_search() -> None:
    vocab, width, max_length, alpha = 6, 3, 8, 1.0
    model = tiny_model(vocab)
    source = sources(3, 4, vocab)
    beam = beam_search(model, source, beam_width=width, max_length=max_length, alpha=alpha)
    expected = reference_beam_search(model, source, width=width, max_length=max_length,
                                     alpha=alpha)
    for row, beams in enumerate(expected):
        order = np.argsort(beam["scores"][row])[::-1]
        np.testing.assert_allclose(beam["scores"][row][order], [s for s, _ in beams],
                                   rtol=1e-5)
        np.testing.assert_array_equal(beam["tokens"][row][order], [t for _, t in beams])


def all_hypotheses(vocab: int, steps: int) -> np.ndarray:
    """Every distinct output of at most ``steps`` tokens (EOS-padded after the first EOS)."""
    seen = set()
    for seq in itertools.product(range(vocab), repeat=steps):
        cut = seq.index(EOS) + 1 if EOS in seq else steps
        seen.add(seq[:cut] + (EOS,) * (steps - cut))
    return np.array(sorted(seen), np.int32)


def test_a_beam_holding_every_hypothesis_finds_the_exhaustive_optimum() -> None:
    vocab, steps, alpha = 5, 3, 1.0
    model = tiny_model(vocab, seed=11)
    source = sources(2, 4, vocab, seed=9)
    beam = beam_search(model, source, beam_width=vocab ** steps, max_length=steps,
                       alpha=alpha)
    candidates = all_hypotheses(vocab, steps)
    count = len(candidates)
    scores = sequence_log_probs(model, np.repeat(source.numpy(), count, axis=0),
                                np.tile(candidates, (2, 1)))
    scores = scores.reshape(2, count) / penalty(lengths_before_eos(candidates), alpha)
    # and the search is no worse than greedy decoding under the same penalty
    path = greedy(model, source, steps)
    greedy_scores = (sequence_log_probs(model, source, path)
                     / penalty(lengths_before_eos(path), alpha))
    for row in range(2):
        order = np.argsort(scores[row])[::-1]
        assert scores[row, order[0]] - scores[row, order[1]] > 1e-4  # a unique optimum
        np.testing.assert_allclose(beam["best_scores"][row], scores[row, order[0]], rtol=1e-5)
        np.testing.assert_array_equal(beam["best_tokens"][row], candidates[order[0]])
        assert beam["best_scores"][row] >= greedy_scores[row] - 1e-6


def test_search_stops_once_every_beam_finished() -> None:
    vocab, max_length = 30, 12
    model = tiny_model(vocab, eos_bias=50.0)  # EOS is every beam's best continuation
    beam = beam_search(model, sources(2, 4, vocab), beam_width=4, max_length=max_length,
                       alpha=1.0)
    assert beam["finished"].all()
    assert beam["steps"] <= 2 < max_length  # K-1 beams take a word first, then all end
    np.testing.assert_array_equal(beam["best_lengths"], [0, 0])


@pytest.mark.slow  # 10 s; test_onednn runs the small preset (gnmt-0) in the default run
def test_small_preset_runs_and_reports() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workloads.gnmt", "--preset", "small", "--seconds", "1",
         "--intervals", "2", "--intra-op", "1", "--inter-op", "2", "--batch-size", "4",
         "--beam-width", "3"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    settings = reported_settings(proc.stdout)
    assert settings["workload"] == "gnmt" and settings["intra_op"] == 1
    assert settings["inter_op"] == 2 and settings["affinity"]
    assert settings["batch_size"] == 4 and settings["beam_width"] == 3
    assert settings["units"] == gnmt.SIZES["small"]["units"] and settings["decoder_layers"] == 4
    assert settings["max_output_length"] == 2 * settings["source_length"]
    metrics = [x for x in proc.stdout.splitlines() if x.startswith("METRIC ")]
    assert len(metrics) == 2 and all("unit=sentences/s" in x for x in metrics)
    throughput = final_throughput(proc.stdout)
    assert throughput > 0
    overall = [x for x in proc.stdout.splitlines() if x.startswith("Overall Throughput : ")]
    assert overall and overall[0].endswith(" sentences per sec.")
    assert float(overall[0].split(":")[1].split()[0]) == pytest.approx(throughput, rel=1e-3)
    assert "GNMT tokens/sec: " in proc.stdout


@pytest.mark.slow
def test_full_preset_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.gnmt", "--preset", "full",
                           "--seconds", "5", "--intervals", "1"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "Overall Throughput : " in proc.stdout
