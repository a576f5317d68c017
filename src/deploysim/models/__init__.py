"""Model providers behind one interface (:class:`~deploysim.models.base.Model`).

``get_model("provider/name?options")`` builds a model from its spec. Providers:
``scripted`` (deterministic, for tests), ``openai`` (any OpenAI-compatible endpoint, via the
official SDK), ``anthropic`` (official SDK), ``llamacpp`` (embedded local GGUF models).
Providers whose SDK is not installed raise a :class:`~deploysim.errors.UsageError` naming the
package to install.
"""

from __future__ import annotations

import importlib

from deploysim.errors import ModelError, UsageError
from deploysim.models.base import GenerateConfig, Generation, Model, ModelSpec, Usage

__all__ = [
    "EXTRAS",
    "PROVIDERS",
    "GenerateConfig",
    "Generation",
    "Model",
    "ModelError",
    "ModelSpec",
    "Usage",
    "get_model",
]

# provider -> (module, class). Imported lazily: llama.cpp is optional and the SDKs are slow to load.
PROVIDERS: dict[str, tuple[str, str]] = {
    "scripted": ("deploysim.models.scripted", "ScriptedModel"),
    "openai": ("deploysim.models.openai_compat", "OpenAIModel"),
    "anthropic": ("deploysim.models.anthropic", "AnthropicModel"),
    "llamacpp": ("deploysim.models.llamacpp", "LlamaCppModel"),
}
# provider -> the pip extra (pyproject.toml) that installs what it needs. The others need only
# deploysim's own dependencies (the openai and anthropic SDKs are among them).
EXTRAS: dict[str, str] = {"llamacpp": "local"}


def get_model(spec: str | ModelSpec) -> Model:
    """Build the model a spec names."""
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    if parsed.provider not in PROVIDERS:
        raise UsageError(
            f"unknown model provider {parsed.provider!r} in {str(parsed)!r}; "
            f"choose one of: {', '.join(PROVIDERS)}"
        )
    module_name, class_name = PROVIDERS[parsed.provider]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        extra = EXTRAS.get(parsed.provider)
        fix = f"pip install 'deploysim[{extra}]'" if extra else "reinstall deploysim"
        raise UsageError(
            f"model provider {parsed.provider!r} needs the package {e.name!r}; install it ({fix})"
        ) from e
    cls: type[Model] = getattr(module, class_name)
    return cls(parsed)
