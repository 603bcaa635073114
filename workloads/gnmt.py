"""GNMT v2 translation inference with beam search on synthetic sentences.

The model of the TensorFlow NMT tutorial's GNMT v2 (and the MLPerf GNMT reference), written
with raw TensorFlow variables and ops:

* encoder: one bidirectional LSTM layer (forward and backward outputs concatenated), then
  three unidirectional LSTM layers; the last two add their input to their output (nmt's
  ``num_encoder_residual_layers = num_layers - 2``);
* decoder: four LSTM layers. Normalised Bahdanau attention (``g * v / ||v||`` scoring vector
  plus a bias, as ``BahdanauAttention(normalize=True)``) is computed on the bottom layer's
  output each step; the bottom layer's input is the target embedding concatenated with the
  previous step's attention context, every upper layer's input is the layer below's output
  concatenated with the new context (GNMT v2). Layers 3 and 4 are residual. The decoder
  starts from the encoder's states (the bidirectional layer's backward state for the bottom
  layer, as nmt's ``pass_hidden_state``), and a bias-free projection gives the logits;
* beam search (nmt's ``BeamSearchDecoder``): one ``tf.while_loop`` over decode steps inside
  one ``tf.function`` carrying LSTM states, attention context, beam log-probabilities,
  finished flags, lengths and token histories; ``top_k`` over beam x vocabulary, states
  reordered by parent beam, finished beams only extended by EOS at no cost, candidates
  ranked by GNMT's length penalty ``((5 + len) / 6) ** alpha`` (``len`` excludes EOS, as in
  nmt). The loop ends when every beam is finished or after ``2 x source length`` steps
  (nmt's decoding length factor); the best length-normalised hypothesis per sentence wins.

Weights are random (uniform in [-0.1, 0.1], nmt's initialiser, fixed seeds), so outputs are
arbitrary and usually run to the maximum length; the loop bound keeps the work well
defined and the average output length is printed. One step translates one fixed batch of
seeded synthetic source sentences (``--source-length`` tokens each, the last one EOS).

Prints METRIC/FINAL lines in sentences/s (see ``workloads._common``), then
``GNMT average output length: L tokens``, ``GNMT tokens/sec: X`` (output tokens) and, like
the reference, ``Overall Throughput : X sentences per sec.``

Presets: ``full`` is the reference (1024 units, 4+4 layers, beam 10, batch 32, vocabulary
32000, source length 25, 1 warm-up batch); ``small`` keeps the topology with 256 units, a
vocabulary of 4000, beam 4, batch 8 and source length 10 so a run takes seconds on 2 cores
(still dominated by the matmuls rather than per-op overhead).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from workloads import _common

PRESETS: dict[str, dict[str, Any]] = {
    "small": {"batch_size": 8, "beam_width": 4, "source_length": 10, "warmup_steps": 1,
              "seconds": 3.0, "intervals": 3},
    "full": {"batch_size": 32, "beam_width": 10, "source_length": 25, "warmup_steps": 1,
             "seconds": 60.0, "intervals": 3},
}

#: Model sizes by preset (not knobs, so not flags).
SIZES: dict[str, dict[str, int]] = {
    "small": {"units": 256, "vocab_size": 4000},
    "full": {"units": 1024, "vocab_size": 32000},
}

LAYERS = 4
RESIDUAL_FROM = 2  # 0-based index of the first residual layer, encoder and decoder alike
PAD_ID, SOS_ID, EOS_ID = 0, 1, 2
FIRST_WORD_ID = 3
FORGET_BIAS = 1.0
INIT_SCALE = 0.1
LENGTH_PENALTY = 1.0
DECODING_LENGTH_FACTOR = 2
NEG = -1e9  # log-probability of an impossible candidate (finite, so no inf - inf)

State = tuple[Any, Any]  # (h, c)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = _common.base_parser(prog="python -m workloads.gnmt",
                                 description=__doc__.splitlines()[0], presets=PRESETS)
    parser.add_argument("--beam-width", type=int, default=None, metavar="K")
    parser.add_argument("--source-length", type=int, default=None, metavar="N",
                        help="tokens per synthetic source sentence (the last one EOS)")
    return parser


def length_penalty(tf: Any, lengths: Any, alpha: float) -> Any:
    """GNMT's length penalty ((5 + len) / 6) ** alpha, as float32."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


class GNMT:
    """GNMT v2 weights as plain variables, with encoder, attention and decoder-step functions
    over raw TF ops (to be called inside a ``tf.function``)."""

    def __init__(self, tf: Any, *, units: int, vocab_size: int, seed: int,
                 compute_dtype: Any, init_scale: float = INIT_SCALE) -> None:
        self.tf = tf
        self.units = units
        self.vocab_size = vocab_size
        self.compute_dtype = compute_dtype
        self._seed = seed
        self._scale = init_scale
        self._draws = 0
        u = units
        self.src_embedding = self._uniform("src_embedding", (vocab_size, u))
        self.tgt_embedding = self._uniform("tgt_embedding", (vocab_size, u))
        self.enc_fw = self._lstm("enc_bi_fw", u)
        self.enc_bw = self._lstm("enc_bi_bw", u)
        self.enc_uni = [self._lstm(f"enc_uni_{i}", 2 * u if i == 0 else u)
                        for i in range(LAYERS - 1)]
        # every decoder layer reads (embedding or layer below, attention context)
        self.dec = [self._lstm(f"dec_{i}", 2 * u) for i in range(LAYERS)]
        self.memory_w = self._uniform("att_memory", (u, u))
        self.query_w = self._uniform("att_query", (u, u))
        self.att_v = self._uniform("att_v", (u,))
        self.att_g = tf.Variable(math.sqrt(1.0 / u), name="att_g")
        self.att_b = tf.Variable(tf.zeros([u]), name="att_b")
        self.out_w = self._uniform("out_w", (u, vocab_size))
        #: None (the reference: a bias-free projection); tests may set a [vocab] bias.
        self.out_bias: Any = None

    def _uniform(self, name: str, shape: tuple[int, ...]) -> Any:
        self._draws += 1
        tf = self.tf
        return tf.Variable(tf.random.stateless_uniform(
            shape, seed=(self._seed, self._draws), minval=-self._scale, maxval=self._scale),
            name=name)

    def _lstm(self, name: str, input_dim: int) -> dict[str, Any]:
        """A BasicLSTMCell: one kernel over [input, h] giving gates i, j, f, o."""
        u = self.units
        return {"kernel": self._uniform(f"{name}_kernel", (input_dim + u, 4 * u)),
                "bias": self.tf.Variable(self.tf.zeros([4 * u]), name=f"{name}_bias")}

    # -- weights in the compute dtype, read once per call (outside the time loops) --

    def weights(self) -> dict[str, Any]:
        tf = self.tf
        dt = self.compute_dtype

        def cell(layer: dict[str, Any]) -> dict[str, Any]:
            return {"kernel": tf.cast(layer["kernel"], dt), "bias": tf.cast(layer["bias"], dt)}

        v = self.att_g * self.att_v / tf.norm(self.att_v)
        w: dict[str, Any] = {
            "enc_fw": cell(self.enc_fw), "enc_bw": cell(self.enc_bw),
            "enc_uni": [cell(x) for x in self.enc_uni], "dec": [cell(x) for x in self.dec],
            "memory": tf.cast(self.memory_w, dt), "query": tf.cast(self.query_w, dt),
            "att_v": tf.cast(v, dt), "att_b": tf.cast(self.att_b, dt),
            "out": tf.cast(self.out_w, dt),
        }
        if self.out_bias is not None:
            w["out_bias"] = tf.cast(self.out_bias, tf.float32)
        return w

    def _cell(self, gates: Any, c: Any) -> State:
        tf = self.tf
        i, j, f, o = tf.split(gates, 4, axis=1)
        c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
        return tf.tanh(c) * tf.sigmoid(o), c

    def _lstm_step(self, cell: dict[str, Any], x: Any, state: State) -> State:
        tf = self.tf
        h, c = state
        gates = tf.matmul(tf.concat([x, h], axis=1), cell["kernel"]) + cell["bias"]
        return self._cell(gates, c)

    # -- encoder --

    def _run_layer(self, cell: dict[str, Any], inputs: Any) -> tuple[Any, State]:
        """One LSTM layer over time-major ``inputs`` [S, B, in] (dynamic_rnn): the input
        projection of all steps is one matmul, the loop does only h @ W_h."""
        tf = self.tf
        steps, in_dim, u = inputs.shape[0], inputs.shape[-1], self.units
        w_x, w_h = cell["kernel"][:in_dim], cell["kernel"][in_dim:]
        proj = tf.matmul(tf.reshape(inputs, [-1, in_dim]), w_x) + cell["bias"]
        proj = tf.reshape(proj, [steps, -1, 4 * u])
        zeros = tf.zeros([tf.shape(inputs)[1], u], self.compute_dtype)
        outputs = tf.TensorArray(self.compute_dtype, size=steps)

        def body(t: Any, h: Any, c: Any, outputs: Any) -> tuple[Any, ...]:
            h, c = self._cell(proj[t] + tf.matmul(h, w_h), c)
            return t + 1, h, c, outputs.write(t, h)

        _, h, c, outputs = tf.while_loop(lambda t, *_: t < steps, body,
                                         (tf.constant(0), zeros, zeros, outputs))
        return outputs.stack(), (h, c)

    def encode(self, w: dict[str, Any], source: Any) -> tuple[Any, list[State]]:
        """Source ids [B, S] -> memory [B, S, units] and the decoder's initial states."""
        tf = self.tf
        x = tf.cast(tf.nn.embedding_lookup(self.src_embedding, tf.transpose(source)),
                    self.compute_dtype)  # [S, B, u]
        fw, _ = self._run_layer(w["enc_fw"], x)
        bw, bw_state = self._run_layer(w["enc_bw"], tf.reverse(x, [0]))
        x = tf.concat([fw, tf.reverse(bw, [0])], axis=-1)
        states = [bw_state]
        for i, cell in enumerate(w["enc_uni"]):
            out, state = self._run_layer(cell, x)
            x = out + x if i + 1 >= RESIDUAL_FROM else out
            states.append(state)
        return tf.transpose(x, [1, 0, 2]), states

    def attention_keys(self, w: dict[str, Any], memory: Any) -> Any:
        tf = self.tf
        u = self.units
        keys = tf.matmul(tf.reshape(memory, [-1, u]), w["memory"])
        return tf.reshape(keys, tf.shape(memory))

    # -- decoder --

    def _attend(self, w: dict[str, Any], query: Any, memory: Any, keys: Any) -> Any:
        """Normalised Bahdanau attention: the context vector [N, units] for query [N, units]."""
        tf = self.tf
        q = tf.matmul(query, w["query"])
        energy = tf.tanh(keys + q[:, None, :] + w["att_b"])
        score = tf.reduce_sum(energy * w["att_v"], axis=2)
        align = tf.cast(tf.nn.softmax(tf.cast(score, tf.float32)), self.compute_dtype)
        return tf.squeeze(tf.matmul(align[:, None, :], memory), axis=1)

    def decoder_step(self, w: dict[str, Any], tokens: Any, states: Sequence[State],
                     attention: Any, memory: Any, keys: Any
                     ) -> tuple[Any, tuple[State, ...], Any]:
        """One decode step for N rows: token ids [N] -> float32 logits [N, V], new states,
        new attention context."""
        tf = self.tf
        x = tf.cast(tf.nn.embedding_lookup(self.tgt_embedding, tokens), self.compute_dtype)
        bottom = self._lstm_step(w["dec"][0], tf.concat([x, attention], axis=1), states[0])
        attention = self._attend(w, bottom[0], memory, keys)
        new_states = [bottom]
        out = bottom[0]
        for i in range(1, LAYERS):
            state = self._lstm_step(w["dec"][i], tf.concat([out, attention], axis=1), states[i])
            new_states.append(state)
            out = state[0] + out if i >= RESIDUAL_FROM else state[0]
        logits = tf.cast(tf.matmul(out, w["out"]), tf.float32)
        if "out_bias" in w:
            logits += w["out_bias"]
        return logits, tuple(new_states), attention

    # -- beam search --

    def beam_search(self, source: Any, *, beam_width: int, max_length: int,
                    alpha: float = LENGTH_PENALTY) -> dict[str, Any]:
        """Beam search for source ids [B, S]; returns every beam (sorted as the last top_k
        left them) and the best one per sentence:

        ``tokens`` [B, K, T] (EOS after a beam finished), ``lengths`` [B, K] (tokens before
        EOS), ``log_probs`` [B, K], ``scores`` [B, K] (length-normalised), ``finished``
        [B, K], ``steps`` (decode steps run), ``best_tokens`` [B, T], ``best_lengths`` [B],
        ``best_scores`` [B].
        """
        tf = self.tf
        k, vocab, t_max = beam_width, self.vocab_size, max_length
        w = self.weights()
        memory, enc_states = self.encode(w, source)
        keys = self.attention_keys(w, memory)
        batch = tf.shape(source)[0]

        def tile(x: Any) -> Any:  # each sentence's rows repeated K times, consecutively
            return tf.repeat(x, k, axis=0)

        memory, keys = tile(memory), tile(keys)
        states = tuple((tile(h), tile(c)) for h, c in enc_states)
        attention = tf.zeros([batch * k, self.units], self.compute_dtype)
        tokens = tf.fill([batch * k], SOS_ID)
        # only beam 0 is live at the start, so the first top_k draws K distinct words
        log_probs = tf.tile(tf.constant([[0.0] + [NEG] * (k - 1)]), [batch, 1])
        finished = tf.zeros([batch, k], tf.bool)
        lengths = tf.zeros([batch, k], tf.int32)
        history = tf.fill([batch, k, t_max], EOS_ID)
        is_eos = tf.equal(tf.range(vocab), EOS_ID)
        eos_only = tf.where(is_eos, 0.0, NEG)  # a finished beam's only continuation
        positions = tf.range(t_max)
        row_offsets = (tf.range(batch) * k)[:, None]

        def cond(t: Any, _tokens: Any, _states: Any, _attention: Any, _log_probs: Any,
                 finished: Any, _lengths: Any, _history: Any) -> Any:
            return tf.logical_and(t < t_max, tf.logical_not(tf.reduce_all(finished)))

        def body(t: Any, tokens: Any, states: Any, attention: Any, log_probs: Any,
                 finished: Any, lengths: Any, history: Any) -> tuple[Any, ...]:
            logits, states, attention = self.decoder_step(w, tokens, states, attention,
                                                          memory, keys)
            step = tf.reshape(tf.nn.log_softmax(logits), [batch, k, vocab])
            step = tf.where(finished[..., None], eos_only, step)
            total = log_probs[..., None] + step
            grown = lengths + tf.cast(tf.logical_not(finished), tf.int32)
            scores = tf.where(is_eos,
                              total / length_penalty(tf, lengths, alpha)[..., None],
                              total / length_penalty(tf, grown, alpha)[..., None])
            _, index = tf.math.top_k(tf.reshape(scores, [batch, k * vocab]), k=k)
            parent, word = index // vocab, index % vocab
            log_probs = tf.gather(tf.reshape(total, [batch, k * vocab]), index, batch_dims=1)
            parent_finished = tf.gather(finished, parent, batch_dims=1)
            grows = tf.logical_not(tf.logical_or(parent_finished, word == EOS_ID))
            lengths = tf.gather(lengths, parent, batch_dims=1) + tf.cast(grows, tf.int32)
            finished = tf.logical_or(parent_finished, word == EOS_ID)
            history = tf.gather(history, parent, batch_dims=1)
            history = tf.where(positions == t, word[..., None], history)
            rows = tf.reshape(parent + row_offsets, [-1])
            states = tuple((tf.gather(h, rows), tf.gather(c, rows)) for h, c in states)
            attention = tf.gather(attention, rows)
            return (t + 1, tf.reshape(word, [-1]), states, attention, log_probs, finished,
                    lengths, history)

        steps, _, _, _, log_probs, finished, lengths, history = tf.while_loop(
            cond, body, (tf.constant(0), tokens, states, attention, log_probs, finished,
                         lengths, history))
        scores = log_probs / length_penalty(tf, lengths, alpha)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        return {
            "tokens": history, "lengths": lengths, "log_probs": log_probs, "scores": scores,
            "finished": finished, "steps": steps,
            "best_tokens": tf.gather(history, best, batch_dims=1),
            "best_lengths": tf.gather(lengths, best, batch_dims=1),
            "best_scores": tf.gather(scores, best, batch_dims=1),
        }


def synthetic_source(tf: Any, *, batch: int, length: int, vocab_size: int, seed: int) -> Any:
    """Seeded source sentences [batch, length]: random words, the last token EOS."""
    words = tf.random.stateless_uniform((batch, length - 1), seed=(seed, 7),
                                        minval=FIRST_WORD_ID, maxval=vocab_size, dtype=tf.int32)
    return tf.concat([words, tf.fill([batch, 1], EOS_ID)], axis=1)


def build_translate(tf: Any, model: GNMT, *, beam_width: int, max_length: int,
                    jit: bool, alpha: float = LENGTH_PENALTY) -> Any:
    """A compiled translation of a source batch: best tokens [B, T] and lengths [B]."""

    @tf.function(jit_compile=jit)
    def translate(source: Any) -> tuple[Any, Any]:
        out = model.beam_search(source, beam_width=beam_width, max_length=max_length,
                                alpha=alpha)
        return out["best_tokens"], out["best_lengths"]
    return translate


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
               vocab_size: int) -> None:
    if args.source_length < 1:
        parser.error("--source-length must be >= 1")
    if not 1 <= args.beam_width < vocab_size - FIRST_WORD_ID:
        parser.error(f"--beam-width must be in [1, {vocab_size - FIRST_WORD_ID})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_arg_parser()
    args = _common.parse_args(parser, PRESETS, argv)
    sizes = SIZES[args.preset]
    check_args(parser, args, sizes["vocab_size"])
    max_length = DECODING_LENGTH_FACTOR * args.source_length
    tf = _common.configure_tensorflow(args)
    model = GNMT(tf, units=sizes["units"], vocab_size=sizes["vocab_size"], seed=args.seed,
                 compute_dtype=_common.compute_dtype(tf, args))
    _common.report_settings(tf, args, "gnmt", {
        "units": sizes["units"], "encoder_layers": LAYERS, "decoder_layers": LAYERS,
        "beam_width": args.beam_width, "vocab_size": sizes["vocab_size"],
        "source_length": args.source_length, "max_output_length": max_length,
        "length_penalty": LENGTH_PENALTY})
    source = synthetic_source(tf, batch=args.batch_size, length=args.source_length,
                              vocab_size=sizes["vocab_size"], seed=args.seed)
    translate = build_translate(tf, model, beam_width=args.beam_width,
                                max_length=max_length, jit=args.xla == "on")
    last: dict[str, Any] = {}

    def run_step() -> object:
        _, out_lengths = translate(source)
        last["lengths"] = out_lengths.numpy()
        return last["lengths"]

    result = _common.measure(run_step, items_per_step=args.batch_size, unit="sentences/s",
                             warmup_steps=args.warmup_steps, seconds=args.seconds,
                             intervals=args.intervals)
    # the inputs are fixed, so every batch yields the same translations
    average_length = float(last["lengths"].mean())
    print(f"GNMT average output length: {average_length:.2f} tokens "
          f"(max {max_length})")
    print(f"GNMT tokens/sec: {result.throughput * average_length:.2f}")
    print(f"Overall Throughput : {result.throughput:.2f} sentences per sec.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
