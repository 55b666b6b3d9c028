"""The generator bundle of Stage II (``generator.safetensors``): what inference needs, nothing more.

One safetensors file (never pickle), written atomically:

* tensors ``generator.<key>``, ``style_encoder.<key>``, ``mapping.<key>``: the state dicts of G
  (with its inversion encoder E), S and F; a training run saves their EMA copies here, and the
  raw (last-step) weights under ``raw.generator.<key>`` etc. (``load_generator_bundle(...,
  weights="raw")``). Tensors may be stored in float16 to keep shipped files small; they are
  loaded into float32 networks;
* metadata ``format = "privlens-stage2"``, ``version = "1"``, ``config`` (JSON: ``image_size``,
  ``style_dim``, ``latent_dim``, ``domains`` (names, in label order), and the constructor
  arguments ``generator``, ``style_encoder``, ``mapping`` of each network, with the main ones
  (``base_width``, ``max_width``, ``w_hpf``, ``mask_channels``, ``mapping_hidden``) repeated at
  the top level for readers, and ``weights``: the sets stored, ``["ema", "raw"]`` or ``["ema"]``)
  and ``provenance`` (JSON: where it came from).

Usage::

    bundle = load_generator_bundle("runs/stage2/generator.safetensors")
    style = bundle.style_encoder(reference, torch.full((b,), bundle.domains.index("female")))
    faces = bundle.generator(capture, heatmap_net(capture), style)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from privlens.files import atomic_save_safetensors
from privlens.nets.stargan import Generator, MappingNetwork, StyleEncoder
from privlens.train.checkpoint import CheckpointError

BUNDLE_FORMAT = "privlens-stage2"
BUNDLE_VERSION = "1"
GENERATOR_FILE = "generator.safetensors"
PARTS = ("generator", "style_encoder", "mapping")
WEIGHTS = ("ema", "raw")
RAW_PREFIX = "raw."

_FOREIGN = {
    "privlens-lens": "a privlens lens file (Stage I optics), not a generator bundle",
    "privlens-heatmap-net": "a privlens heatmap-network file (Stage I U), not a generator bundle",
    "privlens-checkpoint": (
        "a privlens training checkpoint, not a generator bundle; "
        "use generator.safetensors from the run folder"
    ),
}


class GeneratorBundleError(CheckpointError):
    """A generator bundle is missing, corrupt, of another format, or inconsistent (a ValueError)."""


@dataclass
class GeneratorBundle:
    """G (with E), S and F in eval mode, with what is needed to drive them.

    ``domains[i]`` is the name of domain label ``i``; ``config`` is the bundle's ``config`` JSON
    and ``provenance`` its ``provenance`` JSON."""

    generator: Generator
    style_encoder: StyleEncoder
    mapping: MappingNetwork
    domains: list[str]
    image_size: int
    latent_dim: int
    style_dim: int
    config: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    def domain_index(self, name: str) -> int:
        """The label of a domain name; ``ValueError`` naming the known domains otherwise."""
        if name not in self.domains:
            raise ValueError(f"unknown domain {name!r}; this generator knows {', '.join(self.domains)}")
        return self.domains.index(name)

    def to(self, device: torch.device | str) -> GeneratorBundle:
        for net in (self.generator, self.style_encoder, self.mapping):
            net.to(device)
        return self


def bundle_config(
    generator: Generator, style_encoder: StyleEncoder, mapping: MappingNetwork, domains: list[str]
) -> dict[str, Any]:
    """The ``config`` metadata of a bundle; checks that the three networks agree."""
    domains = [str(d) for d in domains]
    if len(domains) != style_encoder.num_domains or len(domains) != mapping.num_domains:
        raise ValueError(
            f"{len(domains)} domain names, but S has {style_encoder.num_domains} heads and F "
            f"{mapping.num_domains}"
        )
    if len(set(domains)) != len(domains):
        raise ValueError(f"domain names must be distinct, got {domains}")
    if not generator.style_dim == style_encoder.style_dim == mapping.style_dim:
        raise ValueError("G, S and F must share one style_dim")
    if generator.image_size != style_encoder.image_size:
        raise ValueError("G and S must share one image_size")
    return {
        "image_size": generator.image_size,
        "style_dim": generator.style_dim,
        "latent_dim": mapping.latent_dim,
        "domains": domains,
        "base_width": generator.base_width,
        "max_width": generator.max_width,
        "w_hpf": generator.w_hpf,
        "mask_channels": list(generator.mask_channels),
        "mapping_hidden": mapping.hidden,
        "generator": generator.arch,
        "style_encoder": style_encoder.arch,
        "mapping": mapping.arch,
    }


def save_generator_bundle(
    path: str | Path,
    generator: Generator,
    style_encoder: StyleEncoder,
    mapping: MappingNetwork,
    domains: list[str],
    provenance: dict[str, Any] | None = None,
    raw: dict[str, torch.nn.Module] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write G, S and F (pass the EMA copies after training) to a bundle file, atomically.

    ``raw``: the raw networks ``{"generator", "style_encoder", "mapping"}`` stored beside the
    EMA copies. ``dtype``: store floating-point tensors in this type (e.g. ``torch.float16`` for
    a shipped file; loading converts back to float32)."""
    config = bundle_config(generator, style_encoder, mapping, domains)
    sets = [("", (generator, style_encoder, mapping))]
    if raw is not None:
        missing = [name for name in PARTS if name not in raw]
        if missing:
            raise ValueError(f"raw weights need {', '.join(PARTS)}; missing {', '.join(missing)}")
        bundle_config(*(raw[name] for name in PARTS), domains)
        if any(
            raw[n].state_dict().keys() != net.state_dict().keys()
            for n, net in zip(PARTS, sets[0][1], strict=True)
        ):
            raise ValueError("the raw networks must have the architecture of the EMA copies")
        sets.append((RAW_PREFIX, tuple(raw[name] for name in PARTS)))
    config["weights"] = ["ema", "raw"] if raw is not None else ["ema"]
    tensors: dict[str, torch.Tensor] = {}
    for prefix, nets in sets:
        for name, net in zip(PARTS, nets, strict=True):
            for key, value in net.state_dict().items():
                value = value.detach()
                if dtype is not None and value.is_floating_point():
                    value = value.to(dtype)
                tensors[f"{prefix}{name}.{key}"] = value.contiguous()
    metadata = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "config": json.dumps(config),
        "provenance": json.dumps(provenance or {}),
    }
    return atomic_save_safetensors(tensors, path, metadata)


def read_bundle_metadata(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, provenance)`` of a bundle without loading its weights."""
    _, config, provenance = _read(Path(path), tensors=False)
    return config, provenance


def _read(path: Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    if path.is_dir() and (path / GENERATOR_FILE).is_file():
        path = path / GENERATOR_FILE  # a Stage II run folder
    if not path.is_file():
        raise GeneratorBundleError(f"generator bundle not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            fmt = metadata.get("format")
            if fmt != BUNDLE_FORMAT:
                what = _FOREIGN.get(fmt or "", f"not a privlens generator bundle (format={fmt!r})")
                raise GeneratorBundleError(f"{path} is {what}")
            data = {k: handle.get_tensor(k) for k in handle.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise GeneratorBundleError(f"{path} is not a readable safetensors file ({error})") from error
    except GeneratorBundleError:
        raise
    except Exception as error:  # noqa: BLE001 - the safetensors reader raises several kinds on bad bytes
        raise GeneratorBundleError(f"{path} is not a readable safetensors file ({error})") from error
    if metadata.get("version") != BUNDLE_VERSION:
        raise GeneratorBundleError(
            f"{path}: unsupported generator bundle version {metadata.get('version')!r} "
            f"(expected {BUNDLE_VERSION})"
        )
    try:
        config = json.loads(metadata["config"])
        provenance = json.loads(metadata.get("provenance", "{}"))
        for key in ("image_size", "style_dim", "latent_dim", "domains", *PARTS):
            config[key]  # noqa: B018 - presence check
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise GeneratorBundleError(f"{path}: corrupt bundle metadata ({error!r})") from error
    return data, config, provenance


def load_generator_bundle(
    path: str | Path, device: torch.device | str = "cpu", weights: str = "ema"
) -> GeneratorBundle:
    """G, S and F from a bundle file (or a Stage II run folder), in eval mode on ``device``.

    ``weights``: ``"ema"`` (the averaged weights, what inference should use) or ``"raw"`` (the
    last training step's weights, when the bundle stores them).

    Raises :class:`GeneratorBundleError` (a ``ValueError``) for a missing, unreadable or corrupt
    file and for other privlens files given by mistake (lens files, heatmap nets, checkpoints).
    """
    path = Path(path)
    if weights not in WEIGHTS:
        raise GeneratorBundleError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    tensors, config, provenance = _read(path)
    stored = config.get("weights", ["ema"])
    if weights not in stored:
        raise GeneratorBundleError(f"{path} stores no {weights} weights (it has {', '.join(stored)})")
    base = RAW_PREFIX if weights == "raw" else ""
    try:
        generator = Generator(
            **{**config["generator"], "mask_channels": tuple(config["generator"]["mask_channels"])}
        )
        style_encoder = StyleEncoder(**config["style_encoder"])
        mapping = MappingNetwork(**config["mapping"])
    except (TypeError, ValueError) as error:
        raise GeneratorBundleError(
            f"{path}: the architecture in the metadata is invalid ({error})"
        ) from error
    for name, net in zip(PARTS, (generator, style_encoder, mapping), strict=True):
        prefix = f"{base}{name}."
        state = {
            k[len(prefix) :]: v.float() if v.is_floating_point() else v
            for k, v in tensors.items()
            if k.startswith(prefix)
        }
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise GeneratorBundleError(
                f"{path}: {name} weights do not fit its architecture ({error})"
            ) from error
        net.eval().requires_grad_(False)
    domains = [str(d) for d in config["domains"]]
    if len(domains) != style_encoder.num_domains or len(domains) != mapping.num_domains:
        raise GeneratorBundleError(
            f"{path}: {len(domains)} domain names for {style_encoder.num_domains} heads"
        )
    bundle = GeneratorBundle(
        generator,
        style_encoder,
        mapping,
        domains,
        int(config["image_size"]),
        int(config["latent_dim"]),
        int(config["style_dim"]),
        config,
        provenance,
    )
    return bundle.to(device)
