"""thumbs.py: encode_image and sprite sheets on real Fashion-MNIST images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dfwidgets.data import ImageSource
from dfwidgets.thumbs import SpriteSheets, encode_image


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_encode_image_round_trips_and_bounds_size(fmnist_test):
    img = fmnist_test[0]
    assert np.array_equal(np.asarray(decode(encode_image(img)).convert("RGB")), np.asarray(img))
    big = decode(encode_image(img, size=112))
    assert big.size == (112, 112)
    # 4x upscale is nearest-neighbour: every pixel block holds the original value
    np.testing.assert_array_equal(np.asarray(big.convert("RGB"))[::4, ::4], np.asarray(img))
    wide = np.zeros((20, 40, 3), np.uint8)
    assert decode(encode_image(wide, size=10)).size == (10, 5)
    assert decode(encode_image(img, format="jpeg")).format == "JPEG"
    with pytest.raises(ValueError, match="format must be one of"):
        encode_image(img, format="bmpx")
    with pytest.raises(ValueError, match="uint8"):
        encode_image(np.zeros((4, 4), np.float32))


def test_sprite_sheets_hold_every_thumbnail_where_locate_says(fmnist_test, tmp_path):
    src = fmnist_test.subset(np.arange(300))
    sheets = SpriteSheets(src, thumb_size=32, per_row=16, cache_dir=tmp_path)
    assert sheets.per_sheet == 256 and sheets.n_sheets == 2
    assert sheets.meta() == {"thumb_size": 32, "per_row": 16, "per_sheet": 256, "n_sheets": 2, "n": 300}
    first, second = decode(sheets.sheet(0)), decode(sheets.sheet(1))
    assert first.size == (512, 512) and second.size == (512, 96)  # 44 thumbnails: 3 rows
    for i in (0, 17, 255, 256, 299):
        k, x, y = sheets.locate(i)
        sheet = first if k == 0 else second
        cell = np.asarray(sheet.crop((x, y, x + 32, y + 32)))
        np.testing.assert_array_equal(cell, np.asarray(sheets.thumbnail(i)))
        # the thumbnail is the real image: grey values follow the 28x28 original
        small = np.asarray(Image.fromarray(cell).convert("L").resize((28, 28)), float)
        assert np.corrcoef(small.ravel(), np.asarray(src[i].convert("L"), float).ravel())[0, 1] > 0.9
    with pytest.raises(IndexError, match="0..299"):
        sheets.locate(300)
    with pytest.raises(IndexError, match="sheet 2"):
        sheets.sheet(2)


def test_sheets_are_cached_on_disk(fmnist_test, tmp_path):
    src = fmnist_test.subset(np.arange(100))
    data = SpriteSheets(src, per_row=10, cache_dir=tmp_path).sheet(0)
    again = SpriteSheets(src, per_row=10, cache_dir=tmp_path)
    again._build = None  # would raise TypeError if the sheet were rebuilt
    assert again.sheet(0) == data
    assert len(list((tmp_path / "thumbs").rglob("*.png"))) == 1


def test_non_square_images_keep_their_aspect_on_a_transparent_cell():
    arr = np.full((2, 10, 30, 3), 200, np.uint8)
    sheets = SpriteSheets(ImageSource.from_array(arr), thumb_size=30, per_row=2, cache=False)
    cell = np.asarray(sheets.thumbnail(1))
    assert cell.shape == (30, 30, 4)
    alpha = cell[..., 3]
    assert (alpha[10:20] == 255).all() and (alpha[:10] == 0).all() and (alpha[20:] == 0).all()
    with pytest.raises(ValueError, match="thumb_size"):
        SpriteSheets(ImageSource.from_array(arr), thumb_size=1000)


def test_sprite_sheets_function_returns_sheets_and_positions(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    import dfwidgets as dfw

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(150, 28, 28), dtype=np.uint8)
    src = dfw.ImageSource.from_array(arr)
    sheets, pos = dfw.thumbs.sprite_sheets(src, size=64, per_row=8, cache_dir=tmp_path)
    assert pos.shape == (150, 3) and pos.dtype == np.int32
    assert len(sheets) == pos[:, 0].max() + 1 == 3          # 8 x 8 = 64 per sheet
    k, x, y = pos[100]
    sheet = Image.open(io.BytesIO(sheets[k])).convert("L")
    cell = np.asarray(sheet.crop((x, y, x + 64, y + 64)))
    # the cell holds item 100 upscaled 28 -> 64 (nearest): compare at the source resolution
    small = np.asarray(Image.fromarray(cell).resize((28, 28), Image.Resampling.NEAREST))
    assert np.abs(small.astype(int) - arr[100].astype(int)).mean() < 40
