"""The locality harness: editors, calibration, zero-strength identity for every method; the
masked baselines, the measures of what an edit does, and the paper's Table 1 script."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorpanda as tp
from tensorpanda.adapters import Latents, load
from tensorpanda.app import eval_measures as em
from tensorpanda.app.eval_masked import (
    directions,
    edit_many,
    fixed_paint,
    masked_editor,
    region_paint,
)
from tensorpanda.app.eval_protocol import Accumulator, linear_alpha
from tensorpanda.app.locality import (
    Candidate,
    Method,
    Setting,
    best_edit,
    calibrate,
    ganspace_method,
    inside_change,
    overlapping_parts,
    panda_method,
    sefa_method,
    shifted,
)

pytestmark = pytest.mark.backend_independent
SETTING = Setting(n_directions=2, n_appearances=1, fit_samples=300, ganspace_samples=300)


@pytest.fixture(scope="module")
def setup():
    pytest.importorskip("gan_face_generate")
    gan = load("dcgan-faces")
    panda, fit = panda_method(gan, "main.5", SETTING, seed=0)
    methods = [panda, sefa_method(gan, SETTING), ganspace_method(gan, SETTING, seed=0)]
    latents = gan.sample_latents(8, seed=3)
    return gan, fit, methods, latents, gan.generate(latents)


@pytest.mark.generator
def test_an_edit_of_strength_zero_is_the_identity_for_every_method(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[40:56, 20:44] = True
    for method in methods:
        for candidate in method.candidates_for(region):
            assert torch.equal(candidate.edit(latents, 0.0), images), candidate.label


@pytest.mark.generator
def test_calibration_matches_the_requested_change_inside(setup):
    _, _, methods, latents, images = setup
    region = np.zeros((64, 64), bool)
    region[20:34, 12:52] = True
    for method in methods:
        candidate = method.candidates_for(region)[0]
        alpha = calibrate(candidate.edit, latents, images, region, target=0.05)
        change = inside_change(images, candidate.edit(latents, alpha), region)
        assert change == pytest.approx(0.05, rel=0.05), method.name


@pytest.mark.generator
def test_overlapping_parts_prefers_the_parts_inside_the_region(setup):
    _, fit, _, _, _ = setup
    region = np.asarray(tp.part_mask(fit, 3, size=(64, 64)))
    first, second, both = overlapping_parts(fit, region)
    assert first == [3] and both == sorted(first + second)


# -- the pieces, on known answers (no generator) ----------------------------------------------


def box(size=8, rows=slice(2, 6), cols=slice(2, 6)) -> np.ndarray:
    region = np.zeros((size, size), bool)
    region[rows, cols] = True
    return region


def test_shifted_moves_only_z():
    latents = Latents(torch.zeros(2, 3), torch.eye(2), truncation=0.5)
    moved = shifted(latents, torch.tensor([1.0, 0.0, 0.0]), 2.0)
    assert torch.equal(moved.z, torch.tensor([[2.0, 0, 0], [2.0, 0, 0]]))
    assert moved.condition is latents.condition and moved.truncation == 0.5
    assert torch.equal(latents.z, torch.zeros(2, 3))


def test_inside_change_is_the_rms_change_in_the_region():
    original = torch.zeros(2, 3, 4, 4)
    edited = original.clone()
    edited[:, :, :2] = 0.5
    region = np.zeros((4, 4), bool)
    region[:2] = True
    assert inside_change(original, edited, region) == 0.5
    assert inside_change(original, edited, ~region) == 0.0


def test_calibrate_finds_the_strength_of_a_linear_edit():
    images = torch.zeros(2, 3, 8, 8)

    def brighten(latents, alpha):
        return images + 0.01 * alpha

    alpha = calibrate(brighten, Latents(torch.zeros(2, 1)), images, box(), target=0.05)
    assert alpha == pytest.approx(5.0, rel=1e-3)
    # an edit that never reaches the region gives up above 1e4 rather than looping
    assert calibrate(lambda latents, alpha: images, Latents(torch.zeros(2, 1)), images,
                     box(), target=0.05) > 1e4


def test_best_edit_prefers_the_local_candidate_at_matched_strength():
    images = torch.zeros(2, 3, 8, 8)
    region = box()
    inside = torch.as_tensor(region, dtype=torch.float32)
    method = Method("toy", lambda region: [
        Candidate("everywhere", lambda latents, alpha: images + 0.01 * alpha),
        Candidate("inside", lambda latents, alpha: images + 0.01 * alpha * inside),
    ], seconds=0.0)
    candidate, alpha = best_edit(method, region, Latents(torch.zeros(2, 1)), images,
                                 Setting(target_change=0.05))
    assert candidate.label == "inside" and alpha == pytest.approx(5.0, rel=1e-3)


def test_overlapping_parts_on_known_parts():
    # parts on a 4x4 grid: the top half, the bottom-right and the bottom-left quadrants
    P = np.zeros((4, 4, 3))
    P[:2, :, 0] = P[2:, 2:, 1] = P[2:, :2, 2] = 1.0
    fit = tp.Factorization(A=np.eye(2), P=P.reshape(16, 3), spatial_shape=(4, 4))
    region = np.zeros((16, 16), bool)
    region[8:, 6:] = True  # the bottom-right quadrant and a bit more
    assert overlapping_parts(fit, region) == [[1], [2], [1, 2]]


# -- any adapter: a style-based one edits in W+ ------------------------------------------------
def test_every_method_runs_on_a_style_based_adapter_and_edits_in_w_plus():
    from test_style_adapter import tiny

    from tensorpanda.app.locality import is_style_based

    gan = tiny()
    assert is_style_based(gan)
    setting = Setting(n_directions=2, n_appearances=1, n_parts=3, fit_samples=40,
                      ganspace_samples=200, batch_size=8, sefa_layers=slice(0, 3))
    panda, fit = panda_method(gan, "b8.conv1", setting, seed=0)
    sefa, ganspace = sefa_method(gan, setting), ganspace_method(gan, setting, seed=0)
    assert np.allclose(
        np.abs(np.asarray(gan.sefa_directions(slice(0, 3), 2).U) @ np.asarray(
            tp.sefa(gan.latent_projection(slice(0, 3)).numpy(), 2).U).T), np.eye(2), atol=1e-5)
    latents = gan.sample_latents(6, seed=3)
    images = gan.generate(latents, batch_size=8)
    region = np.zeros((16, 16), bool)
    region[8:, 4:12] = True
    for method in (panda, sefa, ganspace):
        candidates = method.candidates_for(region)
        assert candidates, method.name
        for candidate in candidates:
            assert torch.equal(candidate.edit(latents, 0.0), images), candidate.label
    assert "at [0, 1, 2]" in sefa.candidates_for(region)[0].label
    # a SeFa edit moves W+ at its layers only: the deepest styles stay as they were
    moved = gan.shift_ws(latents, torch.ones(6), 1.0, slice(0, 3), batch_size=8)
    assert torch.equal(moved.ws[:, 3:], gan.to_ws(latents, batch_size=8).ws[:, 3:])
    candidate, alpha = best_edit(sefa, region, latents, images, Setting(target_change=0.02))
    assert alpha > 0 and candidate.label.startswith("sefa")
    assert fit.rank[1] == 3


# -- the masked baselines, the measures and the protocol (tensorpanda.app.eval_*) -----------------


@pytest.mark.generator
def test_a_masked_edit_of_strength_zero_changes_no_pixel(setup):
    gan, fit, _, latents, images = setup
    paint = fixed_paint("part", np.asarray(tp.part_map(fit, 1)))
    d = np.random.default_rng(0).standard_normal(256)
    edit = masked_editor(gan, "main.5", d / np.linalg.norm(d), paint, 3.0, 250)
    assert torch.equal(edit(latents, 0.0), images)
    assert not torch.equal(edit(latents, 1.0), images)


@pytest.mark.generator
def test_a_masked_edit_stays_within_the_generators_reach_of_its_paint(setup):
    # main.5 is 8×8; each of the three transposed convolutions after it (kernel 4, stride 2)
    # reaches one cell further, so the change can reach 4 + 2 + 1 pixels past the painted
    # cells, and not a pixel further
    gan, _, _, latents, images = setup
    p = np.zeros((8, 8))
    p[3:5, 2:4] = 1.0  # pixels 24:40, 16:32
    d = np.random.default_rng(1).standard_normal(256)
    edited = masked_editor(gan, "main.5", d / np.linalg.norm(d), fixed_paint("box", p), 5.0,
                           250)(latents, 1.0)
    changed = (edited - images).abs().amax(dim=(0, 1)).numpy() > 1e-6
    reach = np.zeros((64, 64), bool)
    reach[24 - 7:40 + 7, 16 - 7:32 + 7] = True
    assert changed.any() and not (changed & ~reach).any()
    assert changed[24:40, 16:32].mean() > 0.9  # and it does change the painted cells


@pytest.mark.generator
def test_edit_many_matches_one_edit_at_a_time(setup):
    gan, fit, _, latents, _ = setup
    paint = fixed_paint("part", np.asarray(tp.part_map(fit, 2)))
    D = np.linalg.qr(np.random.default_rng(2).standard_normal((256, 3)))[0].T
    together = edit_many(gan, "main.5", D, paint, 2.0, latents[:4], 1.5)
    for k in range(3):
        alone = masked_editor(gan, "main.5", D[k], paint, 2.0, 250)(latents[:4], 1.5)
        assert torch.allclose(together[k], alone, atol=1e-5)


def test_every_family_gives_unit_directions_and_pca_and_mean_difference_find_planted_ones():
    rng = np.random.default_rng(0)
    N, C = 60, 12
    Z = 0.1 * rng.standard_normal((N, C, 6, 6))
    inside = np.zeros((6, 6), bool)
    inside[1:3, 1:4] = True
    offset, spread = np.eye(C)[3], np.eye(C)[7]
    Z[:, :, inside] += 2.0 * offset[None, :, None]  # the region's mean differs along e_3
    Z[:, :, inside] += 5.0 * rng.standard_normal((N, 1, 1)) * spread[None, :, None]  # varies on e_7
    fit = tp.tucker2(Z, (None, 3), random_state=0)
    paint = fixed_paint("box", inside.astype(float))
    for family in ("panda", "random", "pca", "mean difference"):
        found = directions(family, paint, Z, fit, 4, seed=0)
        assert found and all(np.isclose(np.linalg.norm(d), 1.0) for _, d in found), family
    pca = directions("pca", paint, Z, fit, 4, 0)
    assert abs(pca[0][1][7]) > 0.99 and np.allclose(pca[0][1], -pca[1][1])
    (_, diff), = directions("mean difference", paint, Z, fit, 4, 0)
    assert diff[3] > 0.9
    with pytest.raises(ValueError, match="unknown family"):
        directions("styles", paint, Z, fit, 4, 0)


def test_region_paint_is_the_share_of_each_cell_inside_the_box_with_peak_one():
    mask = np.zeros((16, 16), bool)
    mask[4:8, 2:8] = True  # cells (1, 0) half, (1, 1) whole at a 4×4 grid of 4×4 pixels
    p = region_paint(mask, (4, 4)).mean_map
    assert p.max() == 1.0 and p[1, 1] == 1.0 and p[1, 0] == 0.5 and p[3, 3] == 0.0
    with pytest.raises(ValueError, match="empty"):
        region_paint(np.zeros((16, 16), bool), (4, 4))


def test_uniform_share_separates_a_tint_from_structure():
    X = np.zeros((3, 3, 8, 8))
    M = np.zeros((8, 8), bool)
    M[2:6, 2:6] = True
    checker = np.indices((8, 8)).sum(axis=0) % 2 - 0.5  # zero mean in the region
    assert em.uniform_share(X, X + 0.2, M) == pytest.approx(1.0)
    assert em.uniform_share(X, X + checker, M) == pytest.approx(0.0, abs=1e-12)
    assert em.uniform_share(X, X + 0.5 + checker, M) == pytest.approx(0.5)


def test_consistency_is_one_for_the_same_change_and_near_zero_for_unrelated_ones():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3, 8, 8))
    M = np.ones((8, 8), bool)
    pattern = rng.standard_normal((3, 8, 8))
    assert em.consistency(X, X + pattern + rng.random((40, 1, 1, 1)), M) == pytest.approx(1.0)
    assert abs(em.consistency(X, X + rng.standard_normal(X.shape), M)) < 0.1


def test_matched_congruence_ignores_order_and_scale_and_sees_differences():
    P = np.random.default_rng(0).random((20, 4))
    assert em.matched_congruence(P, 3 * P[:, [2, 0, 3, 1]]) == 1.0
    Q = np.eye(20)[:, :4]
    assert em.matched_congruence(P, Q) < 0.8
    with pytest.raises(ValueError, match="same shape"):
        em.matched_congruence(P, Q[:, :3])


def test_auc_and_the_background_distance_on_known_answers():
    assert em.auc(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1])) == 1.0
    assert em.auc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0, 0, 1, 1])) == 0.0
    assert np.isnan(em.auc(np.ones(4), np.zeros(4)))
    X = np.zeros((1, 3, 16, 16))
    X[:, :, 6:10, 6:10] = 1.0  # a white square on black
    M = np.zeros((16, 16), bool)
    M[6:10, 6:10] = True
    assert em.border_distance(X, M, em.border_colour(X)) == pytest.approx(np.sqrt(3))
    assert em.background_masks(X)[0].sum() == 16 * 16 - 16


def test_measures_added_in_chunks_equal_those_of_one_pass():
    rng = np.random.default_rng(0)
    X, Y = rng.random((10, 3, 8, 8)), rng.random((10, 3, 8, 8))
    M = np.zeros((8, 8), bool)
    M[2:5, 3:7] = True
    whole, parts = Accumulator(M), Accumulator(M)
    whole.add(X, Y)
    parts.add(X[:4], Y[:4])
    parts.add(X[4:], Y[4:])
    a, b = whole.result(), parts.result()
    for key in ("roir", "inside", "uniform"):
        assert a[key] == pytest.approx(b[key]), key
    assert a["uniform"] == pytest.approx(em.uniform_share(X, Y, M))
    assert a["consistency"] == pytest.approx(em.consistency(X, Y, M))


def test_linear_alpha_finds_the_strength_of_a_linear_edit():
    images = np.zeros((2, 3, 4, 4), np.float32)
    alpha = linear_alpha(lambda latents, a: torch.as_tensor(images + 0.02 * a), None, images,
                         target=0.05)
    assert alpha == pytest.approx(2.5)
    assert linear_alpha(lambda latents, a: torch.as_tensor(images), None, images, 0.05) == \
        float("inf")


# -- the paper's Table 1 protocol, end to end on a random-weight StyleGAN2 ---------------------
def _table1():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "paper_table1.py"
    spec = importlib.util.spec_from_file_location("paper_table1", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_paper_table1_runs_end_to_end_on_a_tiny_stylegan2(tmp_path, capsys, one_torch_thread):
    from pathlib import Path

    from PIL import Image

    checkpoint = Path(__file__).parent / "data" / "stylegan2" / "sg2_skip_uncond.pkl"
    eyes = np.zeros((32, 32), bool)
    eyes[8:16, 8:24] = True
    np.save(tmp_path / "eyes.npy", eyes)
    mouth = np.zeros((32, 32), np.uint8)
    mouth[20:28, 10:22] = 255
    Image.fromarray(mouth).save(tmp_path / "mouth.png")
    out = tmp_path / "table.md"
    assert _table1().main([
        "--checkpoint", str(checkpoint), "--layer", "synthesis.b16.conv1",
        "--mask", f"eyes={tmp_path / 'eyes.npy'}", "--mask", f"mouth={tmp_path / 'mouth.png'}",
        "--samples", "3", "--select", "2", "--fit-samples", "16", "--parts", "2",
        "--candidates", "1", "--directions", "1", "--ganspace-samples", "40",
        "--batch-size", "8", "--max-images", "4", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "| Method | eyes | mouth |" in text
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines()
            if line.startswith("| ") and "±" in line}
    for name in ("PandA", "random direction in PandA's part", "GANSpace", "SeFa"):
        cells = rows[name].strip("| ").split(" | ")[1:]
        assert len(cells) == 2 and all(np.isfinite(float(c.split(" ± ")[0])) for c in cells)


def test_paper_table1_refuses_masks_of_the_wrong_size_or_form(tmp_path):
    table1 = _table1()
    np.save(tmp_path / "small.npy", np.ones((16, 16), bool))
    with pytest.raises(ValueError, match="resize the mask to the image size"):
        table1.read_mask(str(tmp_path / "small.npy"), (32, 32))
    with pytest.raises(ValueError, match="NAME=PATH"):
        table1.parse_masks(["eyes.npy"], (32, 32))
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        table1.read_mask(str(tmp_path / "missing.npy"), (32, 32))
    empty = np.zeros((32, 32), bool)
    np.save(tmp_path / "empty.npy", empty)
    with pytest.raises(ValueError, match="True somewhere"):
        table1.read_mask(str(tmp_path / "empty.npy"), (32, 32))


@pytest.mark.slow
@pytest.mark.generator
def test_the_evaluation_page_has_every_measure_method_and_grid(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("gan_face_generate")
    root = Path(__file__).parents[1]
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "eval_locality.py"), "--smoke", "--seeds",
         "2", "--markdown", str(out), "--figure", str(tmp_path / "grids")],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "mean ± std over 2 fits" in text
    for heading in ("## ROIR", "## RMS pixel change", "## uniform share", "## consistency",
                    "## Part stability", "## Removal and saliency"):
        assert heading in text
    roir = text.split("## ROIR")[1].split("##")[0]
    for row in ("PandA appearance, in PandA's part", "random direction, in the region itself",
                "top PC of the region's features", "mean feature difference",
                "SeFa (latent edit", "GANSpace (latent edit", "uniform change (reference)"):
        assert f"| {row}" in roir, row
    cells = [c for line in roir.splitlines() if "±" in line for c in line.split(" | ")[1:]]
    assert cells and all(float(c.split(" ± ")[0].strip("| ")) >= 0 for c in cells if "±" in c)
    grids = sorted((tmp_path / "grids").glob("*.png"))
    assert [g.name for g in grids] == ["eye-band.png", "mouth.png", "nose.png", "regions.png"]
    for grid in grids:  # the page links each grid, relative to itself
        assert f"](grids/{grid.name})" in text
