"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

One browser for the whole module, small maps. Each page is opened from a file:// URL; the
tests check that it loads without console errors or network requests, that the maps are
drawn where the plot's geometry puts them (pixel statistics of a screenshot, no golden
image), that hovering a unit shows that unit's tooltip, and that the component-plane
selector recolours the plane. scripts/test.sh installs chromium when it is missing; the
tests skip, saying why, only where it cannot be had.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil

import numpy as np
import pytest

from somvq import KSOM

pytest.importorskip("bokeh", reason="the report needs bokeh: pip install somvq[report]")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright: pip install playwright"
)
PIL = pytest.importorskip("PIL.Image", reason="reading screenshots needs Pillow (a dependency of bokeh)")

from somvq import reporting  # noqa: E402

CHROMIUM = os.environ.get("SOMVQ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1400, "height": 1300}
ROWS, COLS = 4, 6


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium found (apt-get install chromium, as scripts/test.sh does when run as root)")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
        except Exception as exc:  # a broken install: say so rather than fail every test
            pytest.skip(f"chromium at {CHROMIUM} does not start: {' '.join(str(exc).split())[:200]}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(3, 9))
    y = rng.integers(0, 3, 150)
    return centres[y] + rng.normal(size=(150, 9)), y


#: Reports by name: (topology, periodic, with data, with labels, with images and clusters).
CASES = {
    "hex-labels": ("hexagonal", False, True, True, True),
    "hex-periodic-nodata": ("hexagonal", True, False, False, False),
    "rect-labels": ("rectangular", False, True, True, True),
    "rect-data": ("rectangular", False, True, False, False),
    "rect-nodata": ("rectangular", False, False, False, False),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory, data):
    X, y = data
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for name, (topology, periodic, with_data, labels, extras) in CASES.items():
        som = KSOM(grid=(ROWS, COLS), topology=topology, periodic=periodic, n_epochs=2, random_state=0).fit(X)
        if name.endswith("nodata"):
            som.labels_ = None  # a model that kept no training hits: nothing known about data
        clusters = (np.arange(ROWS * COLS) % COLS >= 3).astype(int) if extras else None
        path = reporting.report(
            som,
            X if with_data else None,
            y if labels else None,
            folder / f"{name}.html",
            image_shape=(3, 3) if extras else None,
            clusters=clusters,
            # math text in one case: Bokeh's script holds MathJax's address, which it must
            # not fetch (the report promises no network request)
            feature_names=[f"$$x_{i}$$" if name == "rect-nodata" else f"f{i}" for i in range(9)],
            title="$$\\alpha$$ map" if name == "rect-nodata" else None,
        )
        out[name] = (path, som)
    return out


class Page:
    """An opened report with what the browser said while loading it."""

    def __init__(self, browser, path):
        self.page = browser.new_page(viewport=VIEWPORT)
        self.console, self.requests, self.url = [], [], path.resolve().as_uri()
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.console.append(("pageerror", str(e))))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(self.url)
        self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.index && [...Bokeh.index.all_views()].some(v => v.model.name === 'umatrix')",
            timeout=20000,
        )
        self.page.wait_for_timeout(300)  # the first paint after the document is idle

    def frame(self, name):
        """Page position of figure ``name``'s plotting area and its data ranges."""
        return self.page.evaluate(
            """(name) => {
              const v = [...Bokeh.index.all_views()].find(v => v.model.name === name && v.frame);
              const c = v.canvas_view.el.getBoundingClientRect(), f = v.frame.bbox;
              return {left: c.left + f.left, top: c.top + f.top, width: f.width, height: f.height,
                      x0: v.model.x_range.start, x1: v.model.x_range.end,
                      y0: v.model.y_range.start, y1: v.model.y_range.end};
            }""",
            name,
        )

    def screen_position(self, name, unit, hexagonal):
        """Where unit ``unit``'s centre is on the screen, from the grid geometry alone."""
        row, col = divmod(unit, COLS)
        x = col + 0.5 * (row % 2) if hexagonal else col
        y = -row * math.sqrt(3) / 2 if hexagonal else -row
        f = self.frame(name)
        return (
            f["left"] + (x - f["x0"]) / (f["x1"] - f["x0"]) * f["width"],
            f["top"] + (f["y1"] - y) / (f["y1"] - f["y0"]) * f["height"],
        )

    def tooltip(self, name, unit, hexagonal):
        self.page.mouse.move(*self.screen_position(name, unit, hexagonal))
        tip = self.page.locator(".somvq-tooltip").filter(visible=True)
        tip.first.wait_for(timeout=5000)
        return tip.first.inner_text()

    def screenshot(self):
        return np.asarray(PIL.open(io.BytesIO(self.page.screenshot())).convert("RGB")).astype(np.int16)

    def close(self):
        self.page.close()


@pytest.fixture
def opened(browser, reports):
    pages = []

    def open_report(name):
        page = Page(browser, reports[name][0])
        pages.append(page)
        return page

    yield open_report
    for page in pages:
        page.close()


@pytest.mark.parametrize("name", list(CASES))
def test_page_loads_offline_without_errors(opened, name):
    page = opened(name)
    errors = [m for m in page.console if m[0] in ("error", "pageerror", "warning")]
    assert errors == []
    assert [u for u in page.requests if u != page.url and not u.startswith("data:")] == []
    assert page.page.title() == ("$$\\alpha$$ map" if name == "rect-nodata" else "somvq map report")


@pytest.mark.parametrize("name", ["hex-labels", "rect-nodata"])
def test_maps_are_drawn_where_the_geometry_puts_them(opened, name, reports):
    page = opened(name)
    shot = page.screenshot()
    white = (shot >= 250).all(axis=2)
    assert 0.3 < white.mean() < 0.98, "the page is blank or filled"
    hexagonal = name.startswith("hex")
    figures = ["umatrix", "hits", "plane"] + (["labels"] if "labels" in name else [])
    for figure in figures:
        f = page.frame(figure)
        # The frame is the map's shape: COLS wide, ROWS (hexagons: rows * sqrt(3)/2) high.
        aspect = (f["x1"] - f["x0"]) / (f["y1"] - f["y0"])
        assert f["width"] / f["height"] == pytest.approx(aspect, rel=0.02)
        top, left = int(f["top"]), int(f["left"])
        inside = white[top : top + int(f["height"]), left : left + int(f["width"])]
        # Tiles fill the frame but the margins and hexagons' notches: mostly coloured.
        assert inside.mean() < (0.45 if hexagonal else 0.3), (figure, inside.mean())
        # Every unit's centre is coloured (not page background).
        for unit in range(ROWS * COLS):
            x, y = page.screen_position(figure, unit, hexagonal)
            assert not white[int(y), int(x)] or figure == "hits", (figure, unit)
    # Right of the figures there is only page background.
    right = int(max(page.frame(f)["left"] + page.frame(f)["width"] for f in figures)) + 120
    assert white[:, right:].mean() > 0.995


@pytest.mark.parametrize("name", ["hex-labels", "rect-labels", "rect-data", "hex-periodic-nodata"])
def test_hovering_a_unit_shows_its_tooltip(opened, reports, data, name):
    X, y = data
    page = opened(name)
    som = reports[name][1]
    hexagonal = name.startswith("hex")
    codebook = som.codebook_
    bmus = np.array([np.argmin(((x - codebook) ** 2).sum(axis=1)) for x in X])
    for figure, unit in [
        ("umatrix", 0),
        ("hits", ROWS * COLS - 1),
        ("umatrix", COLS + 1),
        ("plane", 2 * COLS + 4),
    ]:
        text = page.tooltip(figure, unit, hexagonal)
        row, col = divmod(unit, COLS)
        assert text.startswith(f"unit {unit} (row {row}, col {col})"), text
        hits = int((bmus == unit).sum()) if "nodata" not in name else 0
        assert f"hits: {hits}" in text
        if hits and "nodata" not in name:
            qe = np.mean(np.sqrt(((X[bmus == unit] - codebook[unit]) ** 2).sum(axis=1)))
            shown = float(re.search(r"QE of its samples: ([0-9.e+-]+)", text).group(1))
            assert shown == pytest.approx(qe, rel=1e-3)
        if "labels" in name and hits:
            labels, counts = np.unique(y[bmus == unit], return_counts=True)
            assert f"labels: {labels[np.argmax(counts)]}: {counts.max()} " in text
        elif "labels" not in name:
            assert "labels:" not in text
    if "labels" in name:  # image data: the codebook vector drawn in the tooltip
        image = page.page.locator(".somvq-tooltip img").filter(visible=True).first
        assert image.evaluate("img => img.complete && img.naturalWidth") == 3
        # ... and it is the hovered unit's (the last one above), not a neighbour's.
        pixels = image.evaluate(
            """img => { const c = document.createElement('canvas'); c.width = 3; c.height = 3;
                       const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                       return Array.from(g.getImageData(0, 0, 3, 3).data).filter((_, i) => i % 4 == 0); }"""
        )
        low, high = codebook.min(), codebook.max()
        expected = np.round(255 * (1 - (codebook[unit] - low) / (high - low)))
        np.testing.assert_allclose(pixels, expected, atol=1)


def test_plane_selector_changes_the_colours(opened, reports):
    page = opened("rect-data")
    som = reports["rect-data"][1]
    f = page.frame("plane")
    box = (
        slice(int(f["top"]), int(f["top"] + f["height"])),
        slice(int(f["left"]), int(f["left"] + f["width"])),
    )
    before = page.screenshot()[box]
    first = int(np.argmax(np.ptp(som.codebook_, axis=0)))
    other = (first + 1) % 9
    page.page.locator("select").select_option(label=f"f{other}")
    page.page.wait_for_timeout(300)
    after = page.screenshot()[box]
    assert np.abs(after - before).max(axis=2).mean() > 5, "the plane's colours did not change"
    title = page.page.evaluate("() => Bokeh.documents[0].get_model_by_name('plane').title.text")
    assert title == f"component plane: f{other}"
    text = page.tooltip("plane", 7, False)
    value = float(re.search(rf"f{other}: ([0-9.e+-]+)", text).group(1))
    column = som.codebook_[:, other]
    # Planes travel as 8-bit levels of the plane's range, shown to 3 decimals.
    assert value == pytest.approx(column[7], abs=np.ptp(column) / 255 + 1e-3)


def test_cluster_boundaries_are_drawn(opened):
    def boundary_pixels(name):
        page = opened(name)
        f = page.frame("umatrix")
        shot = page.screenshot()[
            int(f["top"]) : int(f["top"] + f["height"]), int(f["left"]) : int(f["left"] + f["width"])
        ]
        red = (shot[..., 0] > 180) & (shot[..., 1] < 90) & (shot[..., 2] < 120)  # #e6194b
        return red, f

    red, f = boundary_pixels("rect-labels")
    columns = np.nonzero(red.sum(axis=0) > 0.5 * red.shape[0])[0]
    # Clusters split the columns 0-2 | 3-5: one vertical line at x = 2.5.
    expected = (2.5 - f["x0"]) / (f["x1"] - f["x0"]) * f["width"]
    assert columns.size and abs(columns.mean() - expected) < 3
    red, _ = boundary_pixels("rect-data")
    assert red.sum() == 0
