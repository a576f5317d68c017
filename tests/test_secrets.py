"""The secret key file under concurrent creation, and credentials kept out of model specs."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.errors import UsageError
from deploysim.keys import ENV_KEY, ENV_KEY_FILE, load_secret_key
from deploysim.models.base import ModelSpec
from deploysim.store import Store
from tests.conftest import HH


def _load(path: str, start: object, out: object) -> None:
    os.environ.pop(ENV_KEY, None)
    os.environ[ENV_KEY_FILE] = path
    start.wait()  # type: ignore[attr-defined]
    out.put(load_secret_key().decode())  # type: ignore[attr-defined]


@pytest.mark.parametrize("round_", range(5))
def test_many_processes_creating_the_key_all_get_the_same_full_key(
    tmp_path: Path, round_: int
) -> None:
    ctx = mp.get_context("fork")
    path = str(tmp_path / f"k{round_}" / "secret.key")
    start, out = ctx.Barrier(12), ctx.Queue()
    procs = [ctx.Process(target=_load, args=(path, start, out)) for _ in range(12)]
    for p in procs:
        p.start()
    keys = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert Path(path).read_text() == keys[0]
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
    assert os.listdir(Path(path).parent) == ["secret.key"]  # no temporary file left behind


def test_an_empty_key_file_is_an_error_not_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KEY)
    (tmp_path / "secret.key").write_text("")
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "secret.key"))
    with pytest.raises(UsageError, match="secret key file is empty"):
        load_secret_key()


SECRET = "s3cr3t-Zq9"
BAD_SPECS = [
    f"openai/gpt-4.1-mini?base_url=https://user:{SECRET}@llm.example/v1",
    f"openai/gpt-4.1-mini?base_url=https://llm.example/v1?api_key={SECRET}",
    f"openai/gpt-4.1-mini?access_token={SECRET}",
    f"anthropic/claude?x-api-key={SECRET}",
    f"openai/gpt-4.1-mini?auth_header=Bearer%20{SECRET}",
]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_credentials_in_a_spec_are_refused_without_echoing_them(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        ModelSpec.parse(spec)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        "openai/gpt-4.1-mini?max_tokens=64&temperature=0",
        "openai/gpt-4.1-mini?api_key_env=MY_KEY&base_url=http://127.0.0.1:8000/v1",
        "llamacpp/qwen2.5-coder-0.5b?n_threads=2",
    ],
)
def test_ordinary_options_are_not_mistaken_for_secrets(spec: str) -> None:
    assert ModelSpec.parse(spec).provider in ("openai", "llamacpp")


@pytest.mark.parametrize("spec", BAD_SPECS[:2])
def test_credentials_never_reach_the_store_or_the_terminal(tmp_path: Path, spec: str) -> None:
    from deploysim.cli import app

    store = tmp_path / "s.db"
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(HH), "--store", str(store)]).exit_code == 0
    assert runner.invoke(app, ["sample", "--store", str(store), "--size", "3"]).exit_code == 0
    for args in (
        ["replay", "--store", str(store), "--model", spec],
        ["grade", "--store", str(store), "-g", "judge/S", "--judge", spec],
    ):
        result = runner.invoke(app, args)
        assert isinstance(result.exception, UsageError), result.output
        assert SECRET not in result.output + str(result.exception)
    with Store(store) as st:
        dump = "\n".join(st.db.iterdump())
    assert SECRET not in dump


def test_the_cli_error_line_does_not_echo_the_credential(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = BAD_SPECS[0]
    Store(tmp_path / "s.db").close()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploysim",
            "replay",
            "--store",
            str(tmp_path / "s.db"),
            "--model",
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "credentials" in proc.stderr and SECRET not in proc.stderr + proc.stdout
