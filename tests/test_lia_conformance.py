"""The LIA motion auto-encoder against the authors' 64-px reference case (weights regenerated from the
seeded recipe and checksummed), and the authors' 512-px key layout through the official loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avatar_forcing.errors import CheckpointError
from avatar_forcing.motion.lia.generator import LIA_PRESETS, Generator, load_generator, save_generator
from avatar_forcing.motion.lia.official import (
    PREFIX,
    convert_official,
    export_official_motion_autoencoder,
    infer_lia_config,
    load_official_motion_autoencoder,
)

DATA = Path(__file__).parent / "data" / "lia"
LATENT_ATOL = 1e-4
IMAGE_ATOL = 2e-3
CHECKSUM_RTOL = 1e-6


def regenerate(recipe: dict) -> dict[str, torch.Tensor]:
    """The recipe's weights: RandomState(seed).standard_normal(numel) * std + mean, float32, row-major."""
    out = {}
    for p in recipe["parameters"]:
        values = np.random.RandomState(p["seed"]).standard_normal(int(np.prod(p["shape"])))
        values = (values * p["std"] + p["mean"]).astype(np.float32)
        assert np.isclose(values.sum(dtype=np.float64), p["check_sum"], rtol=CHECKSUM_RTOL, atol=1e-3), p[
            "key"
        ]
        assert np.isclose(np.abs(values).sum(dtype=np.float64), p["check_abs_sum"], rtol=CHECKSUM_RTOL), p[
            "key"
        ]
        np.testing.assert_array_equal(values[: len(p["check_first"])], np.float32(p["check_first"]))
        out[p["key"]] = torch.from_numpy(values.reshape(p["shape"]))
    return out


@pytest.fixture(scope="module")
def case():
    torch.set_num_threads(1)
    recipe = json.loads((DATA / "mae_small_recipe.json").read_text())
    ref = load_file(DATA / "mae_small.safetensors")
    weights = regenerate(recipe)
    generator = Generator(LIA_PRESETS["conformance"]).eval()
    assert list(weights) == [k for k, _ in generator.named_parameters()]  # recipe order = named_parameters
    flat = {PREFIX + k: v for k, v in weights.items()}
    generator = load_official_motion_autoencoder(flat)
    with torch.no_grad():
        latent, feats = generator.encode(ref["in.image"])
        decoded = generator.decode(ref["dec.in.latent"], [f[:1].expand(3, -1, -1, -1) for f in feats])
    return generator, recipe, ref, latent, feats, decoded


@pytest.mark.slow
def test_encoder_latents(case):
    generator, recipe, ref, latent, feats, _ = case
    torch.testing.assert_close(latent, ref["enc.appearance_latent"], atol=LATENT_ATOL, rtol=0)
    torch.testing.assert_close(feats[0], ref["enc.feat.0"], atol=LATENT_ATOL, rtol=0)
    assert len(feats) == len(recipe["encoder_feature_list"])
    for stats, feat in zip(recipe["encoder_feature_list"], feats, strict=True):
        assert list(feat.shape) == stats["shape"]
        assert feat.double().mean().item() == pytest.approx(stats["mean"], abs=LATENT_ATOL)
        assert feat.double().std().item() == pytest.approx(stats["std"], abs=LATENT_ATOL)
        assert feat.double().abs().sum().item() == pytest.approx(stats["abs_sum"], rel=1e-5)


@pytest.mark.slow
def test_motion_coefficients_direction_and_reference(case):
    generator, _, ref, latent, _, _ = case
    with torch.no_grad():
        coeffs = generator.enc.motion_coeffs(latent)
        torch.testing.assert_close(coeffs, ref["enc.motion_coeffs"], atol=LATENT_ATOL, rtol=0)
        torch.testing.assert_close(
            generator.dec.direction.basis(), ref["dec.direction_Q"], atol=LATENT_ATOL, rtol=0
        )
        r_s = generator.motion(latent)
    torch.testing.assert_close(r_s, ref["dec.direction_of_coeffs"], atol=LATENT_ATOL, rtol=0)
    torch.testing.assert_close(r_s, ref["enc_motion.direction"], atol=LATENT_ATOL, rtol=0)
    torch.testing.assert_close(latent[:1] + ref["dec.in.r_d"], ref["dec.in.latent"], atol=LATENT_ATOL, rtol=0)


@pytest.mark.slow
def test_decoder_image_and_flow(case):
    *_, ref, _, _, (image, grid) = case
    torch.testing.assert_close(image, ref["dec.out.image"], atol=IMAGE_ATOL, rtol=0)
    torch.testing.assert_close(grid, ref["dec.out.flow"], atol=IMAGE_ATOL, rtol=0)


@pytest.mark.slow
def test_save_load_round_trip(case, tmp_path):
    generator = case[0]
    save_generator(tmp_path / "mae.safetensors", generator)
    loaded = load_generator(tmp_path / "mae.safetensors")
    assert loaded.cfg == generator.cfg
    for (k, a), (_, b) in zip(generator.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


# --- the released 512-px layout -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_layout():
    return json.loads((DATA / "paper_keys_motion_autoencoder.json").read_text())


def paper_flat(layout: dict, with_buffers: bool = False) -> dict[str, torch.Tensor]:
    """Zeros in the authors' full-size layout (values do not matter for key accounting)."""
    return {
        e["key"]: torch.zeros(e["shape"])
        for e in layout["entries"]
        if with_buffers or e["kind"] == "parameter"
    }


def test_paper_layout_matches_generator_state_dict(paper_layout):
    with torch.device("meta"):
        generator = Generator(LIA_PRESETS["paper"])
    ours = [(PREFIX + k, list(v.shape)) for k, v in generator.state_dict().items()]
    assert ours == [(e["key"], e["shape"]) for e in paper_layout["entries"]]
    assert sum(p.numel() for p in generator.parameters()) == paper_layout["num_parameters"]


def test_full_size_layout_loads_and_round_trips(paper_layout):
    torch.set_num_threads(1)
    flat = paper_flat(paper_layout)
    flat[PREFIX + "dec.direction.weight"] = torch.randn(512, 20, generator=torch.Generator().manual_seed(0))
    flat["flow_transformer.final_layer.linear.bias"] = torch.zeros(512)  # another file's key: unused
    assert infer_lia_config(flat) == LIA_PRESETS["paper"]
    generator = load_official_motion_autoencoder(flat)
    report = generator.official_report
    assert len(report["loaded"]) == sum(e["kind"] == "parameter" for e in paper_layout["entries"])
    assert report["unused"] == ["flow_transformer.final_layer.linear.bias"]
    exported = export_official_motion_autoencoder(generator)
    assert set(exported) == set(flat) - {"flow_transformer.final_layer.linear.bias"}
    assert all(torch.equal(exported[k], flat[k]) for k in exported)


def test_full_size_layout_with_buffers_checks_them(paper_layout):
    flat = paper_flat(paper_layout, with_buffers=True)
    real_kernels = export_official_motion_autoencoder(Generator(LIA_PRESETS["tiny"]), buffers=True)
    kernel = next(v for k, v in real_kernels.items() if k.endswith("upsample.kernel"))
    for key in flat:
        if key.endswith("kernel"):  # zeros are not our blur kernels -> the first one is named
            with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
                load_official_motion_autoencoder(flat)
            break
    for key in flat:
        if key.endswith("upsample.kernel") or key.endswith("blur.kernel"):
            flat[key] = kernel.clone()
        elif key.endswith("kernel"):
            flat[key] = kernel / 4  # encoder blur kernels are not rescaled for upsampling
    generator = load_official_motion_autoencoder(flat)
    assert len(generator.official_report["unused"]) == sum(
        e["kind"] != "parameter" for e in paper_layout["entries"]
    )


def test_missing_or_mismatched_key_is_named(paper_layout):
    flat = paper_flat(paper_layout)
    missing = PREFIX + "dec.convs.3.conv.modulation.bias"
    del flat[missing]
    with pytest.raises(
        CheckpointError, match=r"missing key 'motion_autoencoder\.dec\.convs\.3\.conv\.modulation\.bias'"
    ):
        load_official_motion_autoencoder(flat)
    flat[missing] = torch.zeros(511)
    with pytest.raises(CheckpointError, match=r"convs\.3\.conv\.modulation\.bias.*shape \(511,\)"):
        load_official_motion_autoencoder(flat)
    flat[missing] = torch.zeros(512)
    flat[PREFIX + "enc.net_motion.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected key 'motion_autoencoder\.enc\.net_motion"):
        load_official_motion_autoencoder(flat)
    with pytest.raises(CheckpointError, match="not a motion auto-encoder"):
        load_official_motion_autoencoder({"flow_transformer.x": torch.zeros(1)})


def test_convert_official_pth_to_safetensors(tmp_path):
    torch.manual_seed(0)
    tiny = Generator(LIA_PRESETS["tiny"])
    torch.save(export_official_motion_autoencoder(tiny), tmp_path / "motion_autoencoder.pth")
    record = convert_official(tmp_path / "motion_autoencoder.pth", tmp_path / "ckpt")
    assert record["backend"] == "lia" and record["unused_keys"] == []
    loaded = load_generator(tmp_path / "ckpt" / record["file"])
    assert loaded.cfg == LIA_PRESETS["tiny"]
    assert all(
        torch.equal(a, b)
        for a, b in zip(tiny.state_dict().values(), loaded.state_dict().values(), strict=True)
    )
    (tmp_path / "bad.pth").write_bytes((tmp_path / "motion_autoencoder.pth").read_bytes()[:500])
    with pytest.raises(CheckpointError, match="bad.pth"):
        convert_official(tmp_path / "bad.pth", tmp_path / "ckpt2")
