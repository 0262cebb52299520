"""Figures (the application layer's PNG and GIF writers) on learned factors, any backend."""

from __future__ import annotations

import numpy as np
import pytest
import tensorly as tl
from PIL import Image

import tensorpanda as tp
from helpers import planted, to_backend
from tensorpanda.app import figures


@pytest.fixture(scope="module")
def fitted():
    Z, _, _ = planted(n=120, channels=10, height=6, width=8, n_parts=4, noise=0.05)
    return Z, tp.tucker2(to_backend(Z), (None, 4), random_state=0)


LINE = figures.FONT_SIZE + 4  # one label line: the title, or the column labels


def test_figures_are_written_and_never_overwritten(fitted, tmp_path):
    _, fit = fitted
    rng = np.random.RandomState(0)
    images = rng.uniform(size=(3, 3, 24, 32))
    path = figures.parts_figure(fit.parts, images, tmp_path / "parts.png", upscale=1,
                                title="PandA parts")
    picture = np.asarray(Image.open(path))
    # 1 + 3 rows of 4 parts, padded, under a title and a line of column labels; the row
    # labels ("parts", "sample 2") widen it on the left
    assert picture.shape[0] == 4 * 26 + 2 + 2 * LINE and picture.shape[1] > 4 * 34 + 2
    with pytest.raises(FileExistsError, match="overwrite=True"):
        figures.parts_figure(fit.parts, images, path)
    frames = np.stack([images * s for s in (0.2, 0.6, 1.0)])
    strip = np.asarray(Image.open(figures.edit_strip(frames, tmp_path / "s.png", upscale=1)))
    assert strip.shape[0] == 3 * 26 + 2 + LINE  # no title: only the column labels
    gif = Image.open(figures.edit_gif(frames, tmp_path / "e.gif"))
    assert gif.n_frames == 4  # forward (3) then back without repeating the ends (1)
    maps = rng.uniform(size=(3, 6, 8))
    figures.saliency_figure(images, maps, tmp_path / "sal.png")
    with pytest.raises(ValueError, match=r"\(T, N, 3, H, W\)"):
        figures.edit_strip(images, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="2 alphas for 3 frames"):
        figures.edit_strip(frames, tmp_path / "bad.png", alphas=[0.0, 1.0])
    # written under a temporary name and renamed: nothing else is left in the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.gif", "parts.png", "s.png",
                                                          "sal.png"]
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        figures.edit_gif(frames, tmp_path, overwrite=True)


def test_every_figure_says_what_it_shows(fitted, tmp_path):
    """Part index, appearance, α and method: drawn over the figure and kept in its text."""
    _, fit = fitted
    images = np.random.RandomState(0).uniform(size=(2, 3, 24, 32))
    frames = np.stack([images * s for s in (0.5, 1.0)])
    title = "PandA (hals): appearance 3 into part 1, α in units of σ"
    figures.parts_figure(fit.parts, images, tmp_path / "p.png", title="PandA parts, main.5")
    figures.edit_strip(frames, tmp_path / "s.png", alphas=[-1.5, 2], title=title)
    figures.edit_gif(frames, tmp_path / "e.gif", alphas=[-1.5, 2], title=title)
    figures.saliency_figure(images, np.ones((2, 6, 8)), tmp_path / "l.png", title="saliency")
    assert figures.labels(tmp_path / "p.png") == {
        "Title": "PandA parts, main.5",
        "Columns": "part 0 | part 1 | part 2 | part 3",
        "Rows": "parts | sample 0 | sample 1"}
    assert figures.labels(tmp_path / "s.png") == {
        "Title": title, "Columns": "α = -1.5 | α = 2", "Rows": "sample 0 | sample 1"}
    assert figures.labels(tmp_path / "e.gif")["comment"] == f"{title} [α = -1.5, α = 2]"
    assert figures.labels(tmp_path / "l.png")["Rows"] == "image | saliency | overlay"
    # the labels are drawn: the title band has dark pixels, and another title draws others
    band = np.asarray(Image.open(tmp_path / "s.png"))[:LINE]
    assert band.min() < 100
    figures.edit_strip(frames, tmp_path / "t.png", alphas=[-1.5, 2], title="SeFa: direction 3")
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "t.png"))[:LINE], band)


def test_gif_frames_share_one_size_whatever_their_titles(tmp_path):
    frames = np.random.RandomState(1).uniform(size=(3, 2, 3, 8, 8))
    path = figures.edit_gif(frames, tmp_path / "e.gif", title="x", alphas=[1, -1000.25, 3])
    with Image.open(path) as gif:
        sizes = set()
        for t in range(gif.n_frames):
            gif.seek(t)
            sizes.add(gif.size)
    assert len(sizes) == 1


def test_parts_alone_and_a_region_column(fitted, tmp_path):
    _, fit = fitted
    alone = np.asarray(Image.open(figures.parts_figure(fit.parts, None, tmp_path / "a.png",
                                                       upscale=1)))
    # one row of parts enlarged to about 64 pixels (6×8 maps: ×8 → 48×64), no samples
    assert alone.shape[0] == 2 + 48 + 2 + LINE
    assert figures.labels(tmp_path / "a.png")["Rows"] == "parts"
    region = np.zeros(tuple(fit.spatial_shape))
    region[:3] = 1.0
    figures.parts_figure(fit.parts, None, tmp_path / "r.png", region=region)
    assert figures.labels(tmp_path / "r.png")["Columns"].endswith("part 3 | region")


def test_labels_fall_back_to_plain_text_without_a_greek_font(monkeypatch):
    from PIL import ImageFont

    monkeypatch.setattr(figures, "_font", lambda: (ImageFont.load_default(), False))
    drawn = figures.annotate(np.full((10, 10, 3), 255, np.uint8), (6, 6), title="α = −1 σ",
                             columns=["α = 2"])
    assert drawn.shape[0] == 10 + 2 * LINE and drawn.min() < 100
    assert "α = −1 σ".translate(figures._PLAIN) == "alpha = -1 sigma"


def test_overlay_shows_the_map_where_it_is_high():
    images = np.zeros((1, 3, 4, 4))
    maps = np.zeros((4, 4))
    maps[0, 0] = 1.0
    out = figures.overlay(images, maps, strength=1.0)
    assert out[0, 0, 0].sum() > 2.0 and out[0, 3, 3].sum() < 0.1
    # a part map straight from the core is a backend tensor, and figures take it as it is
    part = tp.part_map(tp.tucker2(to_backend(np.ones((3, 2, 2, 2))), (None, 1)), 0)
    assert tl.is_tensor(part)
    assert figures.overlay(images, part).shape == (1, 4, 4, 3)


def test_figures_clip_values_outside_the_unit_interval_instead_of_wrapping():
    bright = figures.grid(np.full((1, 2, 2, 3), 1.2), columns=1, pad=0)
    dark = figures.grid(np.full((1, 2, 2, 3), -0.2), columns=1, pad=0)
    assert (bright == 255).all() and (dark == 0).all()
    images = np.full((1, 3, 4, 4), 0.5)
    too_high = figures.overlay(images, np.full((4, 4), 3.0), strength=1.0)
    at_one = figures.overlay(images, np.ones((4, 4)), strength=1.0)
    np.testing.assert_allclose(too_high, at_one)


@pytest.mark.backend_independent
def test_colours_grid_layout_and_resizing():
    np.testing.assert_allclose(figures.colorize([0.0, 1.0]),
                               [[0.0, 0.0, 0.02], [0.99, 1.0, 0.75]])
    assert figures.grid(np.zeros((5, 8, 8, 3)), columns=3).shape == (22, 32, 3)  # 2 rows of 3
    assert figures.grid(np.zeros((1, 2, 2, 3)), columns=1, pad=0, upscale=3).shape == (6, 6, 3)
    # the maps are upsampled like the core's tp.upsample (half-pixel centres)
    maps = np.random.default_rng(0).random((2, 3, 5))
    blended = figures.overlay(np.zeros((2, 3, 12, 10)), maps, strength=1.0)
    upsampled = tl.to_numpy(tp.upsample(tl.tensor(maps), (12, 10)))
    # over black images the blend is colour × weight, the weight being the map's value
    np.testing.assert_allclose(blended, figures.colorize(upsampled) * upsampled[..., None],
                               atol=1e-12)


@pytest.mark.backend_independent
def test_torch_images_from_an_adapter_are_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    path = figures.saliency_figure(images, torch.rand(2, 4, 4), tmp_path / "s.png", upscale=1)
    assert np.asarray(Image.open(path)).shape[0] == 3 * 10 + 2 + LINE  # + column labels
    assert figures.images_hwc(images[:, :1]).shape == (2, 8, 8, 3)  # grey repeated to RGB
