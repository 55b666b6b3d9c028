"""Stage II data: sources with landmarks and domains, plus references of a target domain.

Built on the Stage I dataset (:class:`privlens.train.data.LandmarkFaces`: a folder written by
``privlens data prepare``, the same augmentation). A face's *domain* is the first sub-folder of
its source path (``female/0001.jpg`` -> ``female``); a folder without sub-folders is one domain,
``face``.

Every item of a step is the source ``x`` (with its landmarks and domain) and two references
``r``, ``r2`` of a target domain ``t`` drawn uniformly, the references drawn uniformly within
``t``. With ``warp_targets`` an item also holds that reference's landmarks,
``reference_landmarks``, and (``warp_geometry`` ``labels``) ``warp_target``: the first reference
warped onto the source's (augmented) landmarks (:func:`privlens.anonymize.warp.warp_reference`),
the target of the ``lambda_warp`` loss (``heatmap`` geometry is warped in the loop). Sources
follow :class:`privlens.train.data.StepBatchSampler`; targets, references and all augmentation
draws are functions of ``(seed, step, rank, position)``, so a resumed run sees what an
uninterrupted one sees.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from privlens.data.prepare import read_landmarks_csv
from privlens.train.config import ConfigError
from privlens.train.data import LandmarkFaces, StepBatchSampler, mix_seed

SINGLE_DOMAIN = "face"


def face_domains(root: str | Path, split: str = "train") -> dict[str, str]:
    """``{file: domain}`` for the faces of one split of a prepared folder."""
    entries = read_landmarks_csv(Path(root) / "landmarks.csv")
    sources = {name: entry[1] for name, entry in entries.items() if entry[0] == split}
    nested = {name: "/" in source for name, source in sources.items()}
    if nested and any(nested.values()) and not all(nested.values()):
        flat = next(source for name, source in sources.items() if not nested[name])
        raise ConfigError(
            f"data.root: {root} mixes faces in domain sub-folders with faces at the top level "
            f"(e.g. {flat!r}); put every face in a domain folder, or none"
        )
    return {
        name: (source.split("/", 1)[0] if nested[name] else SINGLE_DOMAIN) for name, source in sources.items()
    }


class Stage2Faces(Dataset):
    """The training split with domain labels. ``domains[label]`` names each label.

    Index with a key from :class:`Stage2Sampler`:
    ``(source, source_seed, target, ref1, ref1_seed, ref2, ref2_seed)`` -> ``{"image" [3,N,N],
    "landmarks" [68,2], "domain", "reference", "reference2", "target"}`` (references augmented
    like sources)."""

    def __init__(
        self,
        root: str | Path,
        size: int,
        domains: list[str] | None = None,
        crop_p: float = 0.5,
        flip_p: float = 0.5,
        augment: bool = True,
        warp_targets: bool = False,
        warp_geometry: str = "labels",
    ) -> None:
        self.warp_targets, self.warp_geometry = warp_targets, warp_geometry
        self.faces = LandmarkFaces(root, "train", size, augment=augment, crop_p=crop_p, flip_p=flip_p)
        of = face_domains(root, "train")
        found = sorted(set(of.values()))
        if domains is None:
            domains = found
        missing = [d for d in domains if d not in found]
        if missing:
            raise ConfigError(f"data.domains: no training faces in domain {missing[0]!r} (found {found})")
        if len(set(domains)) != len(domains):
            raise ConfigError(f"data.domains: names must be distinct, got {domains}")
        self.domains = list(domains)
        keep = [i for i, (name, _) in enumerate(self.faces.items) if of[name] in self.domains]
        self.faces.items = [self.faces.items[i] for i in keep]
        self.labels = [self.domains.index(of[name]) for name, _ in self.faces.items]
        self.by_domain = [
            [i for i, label in enumerate(self.labels) if label == d] for d in range(len(self.domains))
        ]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, ...]) -> dict[str, torch.Tensor]:
        source, source_seed, target, ref1, ref1_seed, ref2, ref2_seed = key
        item = self.faces[(source, source_seed)]
        reference = self.faces[(ref1, ref1_seed)]
        out = {
            "image": item["image"],
            "landmarks": item["landmarks"],
            "domain": torch.tensor(self.labels[source], dtype=torch.long),
            "reference": reference["image"],
            "reference2": self.faces[(ref2, ref2_seed)]["image"],
            "target": torch.tensor(target, dtype=torch.long),
        }
        if self.warp_targets:
            out["reference_landmarks"] = reference["landmarks"]
        if self.warp_targets and self.warp_geometry == "labels":  # "heatmap": the loop warps
            from privlens.anonymize.warp import warp_reference

            size = item["image"].shape[-1]
            out["warp_target"] = warp_reference(
                reference["image"], reference["landmarks"], item["landmarks"], size
            ).clamp(0.0, 1.0)
        return out


class Stage2Sampler(Sampler[list[tuple[int, ...]]]):
    """Batches of :class:`Stage2Faces` keys for steps ``start_step .. steps - 1`` of one process."""

    def __init__(
        self,
        by_domain: list[list[int]],
        batch_size: int,
        steps: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.by_domain = by_domain
        size = sum(len(pool) for pool in by_domain)
        self.sources = StepBatchSampler(size, batch_size, steps, seed, start_step, rank, world_size)
        self.seed, self.rank, self.start = seed, rank, start_step

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self):
        for step, batch in enumerate(self.sources, start=self.start):
            keys = []
            for position, (index, draw) in enumerate(batch):
                generator = torch.Generator().manual_seed(
                    mix_seed(self.seed, step, self.rank, position, 0x2EF)
                )
                target = int(torch.randint(len(self.by_domain), (), generator=generator))
                pool = self.by_domain[target]
                ref1, ref2 = (pool[int(i)] for i in torch.randint(len(pool), (2,), generator=generator))
                seeds = torch.randint(2**62, (2,), generator=generator).tolist()
                keys.append((index, draw, target, ref1, int(seeds[0]), ref2, int(seeds[1])))
            yield keys
