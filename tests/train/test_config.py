"""Config loading: YAML into typed dataclasses, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from privlens.cli import app
from privlens.train.config import ConfigError, load_config, parse_overrides, to_yaml
from privlens.train.runs import check_data_root
from privlens.train.stage1_config import Stage1Config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["stage1_tiny.yaml", "stage1_celebahq.yaml", "stage1_ffhq.yaml"])
def test_shipped_configs_load(name):
    config = load_config(Stage1Config, CONFIGS / name)
    assert config.loss.alpha1 == 10.0 and config.loss.alpha2 == 2.0
    assert config.camera.lr == 5e-4 or name == "stage1_tiny.yaml"
    assert config.camera.num_terms == 15 and config.camera.frozen_terms == (1, 2, 3)
    if name != "stage1_tiny.yaml":
        assert config.data.image_size == 256 and config.net.width == 256 and config.net.depth == 4


@pytest.mark.parametrize("path", sorted((CONFIGS / "shipped").glob("stage1_*.yaml")), ids=lambda p: p.name)
def test_every_shipped_stage1_recipe_validates(path):
    config = load_config(Stage1Config, path)
    assert config.data.image_size == 64


def test_overrides_are_typed_and_nested():
    config = load_config(
        Stage1Config,
        CONFIGS / "stage1_tiny.yaml",
        [
            "train.steps=7",
            "camera.frozen_terms=[1, 2]",
            "camera.mirror_limit_um=0.5",
            "loss.alpha1=3",
            "net.pretrained=null",
            "data.root=/some/where",
        ],
    )
    assert config.train.steps == 7
    assert config.camera.frozen_terms == (1, 2)
    assert config.camera.mirror_limit_um == 0.5
    assert isinstance(config.loss.alpha1, float) and config.loss.alpha1 == 3.0
    assert config.net.pretrained is None and config.data.root == "/some/where"
    assert config.net.width == 32  # untouched keys keep the file's values


def test_resolved_yaml_round_trips(tmp_path):
    config = load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", ["camera.mirror_limit_um=0.25"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    assert load_config(Stage1Config, path) == config


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("net:\n  widht: 32\n", "net.widht"),
        ("optimiser:\n  lr: 1\n", "optimiser"),
        ("train:\n  steps: ten\n", "train.steps"),
        ("train:\n  steps: 1.5\n", "train.steps"),
        ("train:\n  progress: 1\n", "train.progress"),
        ("camera:\n  convolution: wrap\n", "camera.convolution"),
        ("camera:\n  frozen_terms: [1, two]\n", "camera.frozen_terms[1]"),
        ("net: 5\n", "net"),
        ("data:\n  image_size: 100\n", "data.image_size"),
        ("camera:\n  frozen_terms: [1, 40]\n", "camera.frozen_terms"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(Stage1Config, path)
    assert key in str(error.value)


def test_bad_overrides_name_the_key():
    with pytest.raises(ConfigError, match="loss.alpha3"):
        load_config(Stage1Config, None, ["loss.alpha3=1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.steps"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(Stage1Config, None, ["train.batch_size=[4]"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Stage1Config, "/no/such/config.yaml")


def test_missing_data_folder_names_data_root(tmp_path):
    with pytest.raises(ConfigError, match="data.root: no data folder"):
        check_data_root(Stage1Config())
    with pytest.raises(ConfigError, match="data.root: data folder not found"):
        check_data_root(load_config(Stage1Config, None, [f"data.root={tmp_path / 'nope'}"]))
    with pytest.raises(ConfigError, match="data.root: .* has no landmarks.csv"):
        check_data_root(load_config(Stage1Config, None, [f"data.root={tmp_path}"]))


def test_a_data_folder_without_a_validation_split_is_refused(faces64, tmp_path):
    from privlens.train.stage1 import run_stage1

    (tmp_path / "landmarks.csv").write_text(
        "\n".join(
            line for line in (faces64 / "landmarks.csv").read_text().splitlines() if ",val," not in line
        )
    )
    config = load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", [f"data.root={tmp_path}"])
    with pytest.raises(ConfigError, match="data.root: .*no faces in the 'val' split"):
        run_stage1("optics", config, tmp_path / "run")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "data.root"),
        (["net.widht=3"], "net.widht"),
        (["train.steps=many"], "train.steps"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, args, message):
    result = CliRunner().invoke(
        app, ["train", "optics", "--config", str(CONFIGS / "stage1_tiny.yaml"), "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_net_stride_follows_the_pretrained_file_unless_set(tmp_path):
    from privlens.models.heatmap import save_heatmap_net
    from privlens.nets import HeatmapNet
    from privlens.train.stage1 import build_net

    path = save_heatmap_net(HeatmapNet(width=8, depth=2, stride=2), tmp_path / "u.safetensors")
    base = ["net.width=8", "net.depth=2", "data.image_size=32", f"net.pretrained={path}"]
    assert build_net(load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", base)).stride == 2
    with pytest.raises(ConfigError, match="stride"):  # stated explicitly, it must match the file
        build_net(load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", [*base, "net.stride=4"]))
    assert build_net(load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", base[:3])).stride == 4
    with pytest.raises(ConfigError, match="net.stride"):
        load_config(Stage1Config, CONFIGS / "stage1_tiny.yaml", ["net.stride=3"])
