"""deploysim's replay against vLLM, as a ratio to vLLM's own benchmark client in the same run.

Both clients send the same chat prompts to the same ``vllm serve`` process on loopback:

1. Prompts: the HH-RLHF and OpenAssistant samples in ``shared/data/chat`` are ingested into a
   temporary store with deploysim's own API (:func:`~deploysim.ingest.ingest_file`), every prefix
   is drawn, and the prefixes that are one user message (first turns) are kept. vLLM's client
   sends one user message per request (its ``custom`` dataset is a ``{"prompt": ...}`` JSONL),
   so multi-turn prefixes would not be the same request for both. Those first turns, with their
   logged answers, are ingested again as conversations of their own and a sample is drawn from
   them with :func:`~deploysim.replay.create_sample`: deploysim replays that sample, and the
   vLLM client's dataset file is written from the same sampled prefixes (each repeated
   ``--draws`` times, as deploysim replays each prefix ``--draws`` times).
2. vLLM's client: ``vllm bench serve --backend openai-chat --endpoint /v1/chat/completions
   --dataset-name custom --dataset-path prompts.jsonl --skip-chat-template --disable-shuffle
   --custom-output-len M --max-concurrency C --temperature 0 --save-result ...``. The
   chat template is skipped because the chat endpoint applies it on the server.
3. deploysim: :func:`~deploysim.replay.run_replay` with ``openai/<served name>?base_url=...``,
   the same concurrency, ``max_tokens`` and temperature 0.

Printed per round and client: requests/s and output tokens/s (completed requests and the
server-reported completion tokens over the run's wall time), then deploysim / vLLM-client ratios
from the last round, and every command run. The wall times: deploysim's is ``run_replay``'s (its
client set-up and the store's writes included: what a user waits for); the vLLM client's is its
result's ``duration`` (after its own one-request warm-up, without its process start). On a fast
server the set-up counts, so send enough requests (``--draws``). Rounds alternate the clients;
the first round also warms the server (CUDA graphs, prefix cache), so the ratio is taken from
the last round, where both clients meet a warm server. The two clients do not send identical
bytes: vLLM's client streams (``stream: true``, SSE chunks parsed per token) and deploysim does
not, and neither forces the answer length (no ``ignore_eos``), so greedy answers to the same
prompts should have about the same length; the mean output tokens per request is printed for
each so a difference shows. Compare output tokens/s where they differ.

What the flags rest on (vLLM's CLI changes between releases; check ``vllm bench serve --help``
on the machine): the ``vllm bench serve`` reference at https://docs.vllm.ai/en/latest/cli/bench/serve/
(``--dataset-name custom``, ``--skip-chat-template``, ``--disable-shuffle``, ``--backend
openai-chat``, ``--max-concurrency``, ``--save-result``/``--result-dir``/``--result-filename``);
vLLM's source, ``vllm/benchmarks/datasets/custom.py`` (the ``prompt`` column; the chat template
applied unless skipped; ``--custom-output-len`` as each request's output length) and
``vllm/benchmarks/lib/endpoint_request_func.py`` (openai-chat sends one user message, streams,
and sets ``max_completion_tokens``); the result file's ``duration``, ``completed``,
``total_output_tokens``, ``request_throughput`` and ``output_throughput`` keys in
``vllm/benchmarks/serve.py``. Older releases (0.10.x) spelled the template flag
``--custom-skip-chat-template``: pass ``--vllm-bench-arg`` to adjust.

On a GPU machine (vLLM installed, the model's weights local: the device machines have no
network)::

    .venv/bin/python benchmarks/vllm.py --model /models/Qwen2.5-0.5B-Instruct \\
        --data /path/to/shared/data/chat --concurrency 64 --max-tokens 128 --draws 8
    .venv/bin/python benchmarks/vllm.py --url http://127.0.0.1:8000 --model MODEL  # running server

Without vLLM, ``--server fixed`` runs the deploysim half against deploysim's loopback
fixed-latency server (``deploysim.testing.fixed_server``, every answer 50 ms after the request,
one output token): the plumbing (ingest, sampling, the prompt file, the replay, the figures)
proven on a CPU, with the replay's rate as a share of the ideal concurrency / latency::

    .venv/bin/python benchmarks/vllm.py --server fixed --concurrency 16 --draws 4
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from _common import fixed_server
from deploysim.execute import choose
from deploysim.ingest import file_sha256, ingest_file
from deploysim.models import GenerateConfig
from deploysim.replay import ReplaySpec, create_sample, load_prefix, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store

DATA = Path(__file__).resolve().parents[2] / "shared/data/chat"
FIXED_LATENCY = 0.05
Server = Literal["vllm", "fixed"]


class BenchError(Exception):
    """A benchmark step that cannot go on: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Figures:
    """One client's run: requests completed and failed, output tokens, wall seconds."""

    client: str
    ok: int
    failed: int
    output_tokens: int
    seconds: float

    @property
    def requests_per_s(self) -> float:
        """Completed requests per second of the run's wall time."""
        return self.ok / self.seconds

    @property
    def tokens_per_s(self) -> float:
        """Output (completion) tokens per second of the run's wall time."""
        return self.output_tokens / self.seconds

    def line(self) -> str:
        """The figures as one printed line."""
        per = self.output_tokens / self.ok if self.ok else 0.0
        return (
            f"{self.client:14s} {self.requests_per_s:8.2f} req/s {self.tokens_per_s:9.1f} "
            f"output tok/s  ({self.ok} ok, {self.failed} failed, {per:.1f} output tokens/request, "
            f"{self.seconds:.2f} s)"
        )


# --- prompts ---------------------------------------------------------------------------------


def first_turns(store: Store, data: Path) -> list[tuple[str, str]]:
    """(user message, logged answer) of the one-message prefixes in the chat files of ``data``,
    one per distinct message."""
    files = sorted(data.glob("*.jsonl"))
    if not files:
        raise BenchError(f"{data}: no *.jsonl chat logs (name the folder with --data)")
    for path in files:
        ingest_file(path, store)
    info = create_sample(store, "all-prefixes", SamplingSpec(size=1_000_000))
    ids = [
        r[0] for r in store.db.execute("SELECT id FROM prefixes WHERE sample_id = ?", (info.id,))
    ]
    # One answer per distinct question, so that --prompts counts distinct prompts:
    # OpenAssistant's threads of one tree all start with the tree's first message.
    out: dict[str, str] = {}
    for pid in ids:
        p = load_prefix(store, pid)
        one = len(p.messages) == 1 and p.messages[0].role == "user" and bool(p.continuation)
        if one and p.messages[0].text.strip() and p.continuation[0].text.strip():
            out.setdefault(p.messages[0].text, p.continuation[0].text)
    return list(out.items())


def prepare(
    store: Store, data: Path, tmp: Path, n: int, seed: int
) -> tuple[list[str], SamplingSpec]:
    """Ingest the first turns as conversations and draw ``n`` of them as sample ``round-1``.

    Returns their prompts in prefix order and the sampling spec, with which later rounds draw
    the same prefixes under names of their own (a replayed sample is done: it resumes to nothing).
    """
    turns = first_turns(store, data)
    logs = tmp / "first-turns.jsonl"
    with logs.open("w", encoding="utf-8") as f:
        for user, answer in turns:
            msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    ingest_file(logs, store)
    spec = SamplingSpec(size=n, seed=seed, max_user_turns=1, inputs=(file_sha256(logs),))
    info = create_sample(store, "round-1", spec)
    rows = store.db.execute("SELECT id FROM prefixes WHERE sample_id = ? ORDER BY id", (info.id,))
    return [load_prefix(store, r[0]).messages[0].text for r in rows], spec


def write_dataset(path: Path, prompts: Sequence[str], draws: int) -> None:
    """vLLM's ``custom`` dataset: one ``{"prompt": ...}`` line per request."""
    with path.open("w", encoding="utf-8") as f:
        for prompt in prompts:
            for _ in range(draws):
                f.write(json.dumps({"prompt": prompt}) + "\n")


# --- the server ------------------------------------------------------------------------------


def vllm_executable(given: str | None) -> str:
    """The ``vllm`` command: ``--vllm``, the one beside this Python, or on ``PATH``."""
    beside = Path(sys.executable).parent / "vllm"
    found = given or (str(beside) if beside.is_file() else shutil.which("vllm"))
    if found is None or not Path(found).is_file():
        raise BenchError(
            "vllm is not installed: `pip install vllm` on a GPU machine (or name the command with "
            "--vllm, or use --url for a server already running); `--server fixed` runs the "
            "deploysim half without it"
        )
    return found


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_models(url: str) -> list[str]:
    """The model ids at ``<url>/v1/models``."""
    with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as r:
        return [m["id"] for m in json.load(r)["data"]]


def wait_ready(url: str, timeout: float, server: subprocess.Popen[bytes] | None, log: Path) -> None:
    """Poll ``/v1/models`` until it answers; fail fast if the server process exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if served_models(url):
                return
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        if server is not None and server.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise BenchError(f"vllm serve exited ({server.returncode}):\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise BenchError(f"{url}/v1/models did not answer within {timeout:.0f} s (log: {log})")
        time.sleep(2)


@contextmanager
def vllm_server(
    command: list[str], url: str, timeout: float, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``vllm serve`` in a process group of its own, stopped (the group) on exit."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(url, timeout, server, log)
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


# --- the two clients -------------------------------------------------------------------------


def vllm_client(command: list[str], result: Path, requests: int, log: Path) -> Figures:
    """Run ``vllm bench serve`` and read its result file."""
    with log.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not result.is_file():
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise BenchError(f"vllm bench serve failed ({done.returncode}):\n" + "\n".join(tail))
    r = json.loads(result.read_text())
    ok = int(r["completed"])
    return Figures(
        "vllm client", ok, requests - ok, int(r["total_output_tokens"]), float(r["duration"])
    )


def deploysim_client(
    store: Store, spec: ReplaySpec, sample: str, draws: int, concurrency: int, workers: int
) -> Figures:
    """Replay a sample with deploysim's engine; the summary's wall time and token counts."""
    s = run_replay(
        store,
        spec,
        sample_name=sample,
        draws=draws,
        concurrency=concurrency,
        executor=choose("local", workers=workers),
    )
    return Figures("deploysim", s.ok, s.failed, s.output_tokens, s.seconds)


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    server: tuple[Server, ...] = ("vllm", "fixed")
    p.add_argument("--server", choices=server, default="vllm", help="vllm, or the CPU dry run")
    p.add_argument("--dry-run", action="store_true", help="the same as --server fixed")
    p.add_argument("--model", help="what `vllm serve` loads (a local path or id); the tokenizer")
    p.add_argument("--url", help="a vLLM server already running (http://host:port), not started")
    p.add_argument("--data", type=Path, default=DATA, help="folder of chat logs (HH-RLHF, OASST)")
    p.add_argument("--prompts", type=int, default=64, help="distinct prompts to sample")
    p.add_argument("--draws", type=int, default=8, help="requests per prompt (both clients)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="rounds (each: vLLM client, deploysim)")
    p.add_argument("--workers", type=int, default=1, help="deploysim replay processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vllm", help="the vllm command (default: beside this Python, or on PATH)")
    p.add_argument("--startup-timeout", type=float, default=1200.0)
    p.add_argument("--serve-arg", action="append", default=[], help="extra `vllm serve` argument")
    p.add_argument("--vllm-bench-arg", action="append", default=[], help="extra bench argument")
    p.add_argument("--json", type=Path, help="also write the figures here as JSON")
    p.add_argument("--keep", type=Path, help="keep the store, prompt file and logs in this folder")
    args = p.parse_args(argv)
    if args.dry_run:
        args.server = "fixed"
    if args.server == "vllm" and not args.model:
        p.error("--model is required with --server vllm (the model served, and the tokenizer)")
    if min(args.prompts, args.draws, args.concurrency, args.max_tokens, args.rounds) < 1:
        p.error("--prompts, --draws, --concurrency, --max-tokens and --rounds must be >= 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Prepare the prompts, start or find the server, run the rounds; returns the figures."""
    os.environ.setdefault("DEPLOYSIM_SECRET_KEY", "benchmark")
    if args.server == "vllm":
        vllm_executable(args.vllm)  # before the prompts are prepared: fail early
    with Store(work / "bench.db") as store:
        prompts, same = prepare(store, args.data, work, args.prompts, args.seed)
        requests = len(prompts) * args.draws
        dataset = work / "prompts.jsonl"
        write_dataset(dataset, prompts, args.draws)
        print(
            f"{len(prompts)} distinct prompts x {args.draws} draws = {requests} requests; "
            f"concurrency {args.concurrency}, max_tokens {args.max_tokens}",
            flush=True,
        )
        commands: list[list[str]] = []
        rounds: list[list[Figures]] = []
        with _server(args, work, commands) as (url, served):
            spec = ReplaySpec(
                model=f"openai/{served}?base_url={url}/v1",
                config=GenerateConfig(temperature=0, max_tokens=args.max_tokens, timeout_s=600),
            )
            for r in range(1, args.rounds + 1):
                figures: list[Figures] = []
                if args.server == "vllm":
                    result = work / f"vllm-client-{r}.json"
                    bench = _bench_command(args, url, served, dataset, requests, result)
                    commands.append(bench)
                    figures.append(vllm_client(bench, result, requests, work / f"bench-{r}.log"))
                sample = f"round-{r}"
                create_sample(store, sample, same)  # round 1's exists: returned as drawn
                figures.append(
                    deploysim_client(
                        store, spec, sample, args.draws, args.concurrency, args.workers
                    )
                )
                for f in figures:
                    print(f"round {r}: {f.line()}", flush=True)
                rounds.append(figures)
        commands.append(
            [
                "deploysim",
                "replay",
                "--store",
                str(work / "bench.db"),
                "--model",
                spec.model,
                "--sample",
                "round-N",
                "--samples-per-prefix",
                str(args.draws),
                "--concurrency",
                str(args.concurrency),
                "--temperature",
                "0",
                "--max-tokens",
                str(args.max_tokens),
            ]
        )
    lines = [shlex.join(c) for c in commands]
    out: dict[str, object] = {
        "server": args.server,
        "prompts": len(prompts),
        "requests": requests,
        "rounds": [[asdict(f) for f in figs] for figs in rounds],
        "commands": lines,
    }
    last = rounds[-1]
    if args.server == "vllm":
        ref, ours = last
        out["ratio_requests"] = ours.requests_per_s / ref.requests_per_s
        out["ratio_tokens"] = ours.tokens_per_s / ref.tokens_per_s
        print(
            f"deploysim / vLLM client (round {args.rounds}): requests/s "
            f"{out['ratio_requests']:.3f}, output tokens/s {out['ratio_tokens']:.3f}"
        )
    else:
        ideal = args.concurrency / FIXED_LATENCY
        out["share_of_ideal"] = last[-1].requests_per_s / ideal
        print(
            f"deploysim on the fixed server (round {args.rounds}): "
            f"{out['share_of_ideal']:.3f} of the ideal {ideal:.0f} req/s "
            "(concurrency / latency); the vLLM client is not run in this mode"
        )
    print("commands:\n  " + "\n  ".join(lines))
    return out


@contextmanager
def _server(
    args: argparse.Namespace, work: Path, commands: list[list[str]]
) -> Iterator[tuple[str, str]]:
    """Yields (base URL without ``/v1``, served model name) of the server the rounds use."""
    if args.server == "fixed":
        with fixed_server(FIXED_LATENCY) as (base, summary):
            yield base.removesuffix("/v1"), "fixed"
        print(f"fixed server: {summary[0]}")
    elif args.url:
        url = args.url.rstrip("/").removesuffix("/v1")
        wait_ready(url, 30, None, work / "none.log")
        yield url, served_models(url)[0]
    else:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [
            vllm_executable(args.vllm),
            "serve",
            args.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--served-model-name",
            "bench",
            *args.serve_arg,
        ]
        commands.append(serve)
        print(f"starting: {shlex.join(serve)}", flush=True)
        with vllm_server(serve, url, args.startup_timeout, work / "vllm-serve.log"):
            yield url, "bench"


def _bench_command(
    args: argparse.Namespace, url: str, served: str, dataset: Path, requests: int, result: Path
) -> list[str]:
    """``vllm bench serve`` on the prompt file, matching deploysim's replay settings."""
    return [
        vllm_executable(args.vllm), "bench", "serve",
        "--backend", "openai-chat", "--base-url", url, "--endpoint", "/v1/chat/completions",
        "--model", served, "--tokenizer", args.model or served,
        "--dataset-name", "custom", "--dataset-path", str(dataset), "--skip-chat-template",
        "--disable-shuffle", "--num-prompts", str(requests),
        "--custom-output-len", str(args.max_tokens), "--max-concurrency", str(args.concurrency),
        "--request-rate", "inf", "--temperature", "0", "--seed", str(args.seed),
        "--save-result", "--result-dir", str(result.parent), "--result-filename", result.name,
        *args.vllm_bench_arg,
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 2 with one line when a step cannot go on."""
    args = parse_args(argv)
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            out = run(args, args.keep)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out = run(args, Path(tmp))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
