"""Make docs/figures/report.png: a screenshot of the HTML report (docs/report.md).

A 16x32 hexagonal map on scikit-learn's digits with their labels and 8x8 images; the
cluster boundaries come from k-means (10 clusters) on the codebook, standing in for the
map-analysis clustering. Headless Chromium (the system's, through Playwright) opens the
page, hovers a unit and photographs the top of the page; the PNG is reduced to a
256-colour palette to stay small.

    python docs/figures/make_report_screenshot.py
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "report.png"


def main() -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits

    import somvq

    digits = load_digits()
    som = somvq.KSOM(grid=(16, 32), topology="hexagonal", n_epochs=10, random_state=0).fit(digits.data)
    clusters = KMeans(n_clusters=10, n_init=4, random_state=0).fit_predict(som.codebook_)
    folder = Path(tempfile.mkdtemp(prefix="somvq-screenshot-"))
    page_path = somvq.report(
        som,
        digits.data,
        digits.target,
        folder / "report.html",
        image_shape=(8, 8),
        clusters=clusters,
        feature_names=[f"pixel {r},{c}" for r in range(8) for c in range(8)],
        data_description="scikit-learn digits: 1797 images of 8x8 pixels",
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1040, "height": 720})
        page.goto(page_path.as_uri())
        page.wait_for_function(
            "() => window.Bokeh && [...Bokeh.index.all_views()].some(v => v.model.name === 'labels')"
        )
        page.wait_for_timeout(500)
        box = page.evaluate(
            """() => {
              const v = [...Bokeh.index.all_views()].find(v => v.model.name === 'umatrix' && v.frame);
              const c = v.canvas_view.el.getBoundingClientRect(), f = v.frame.bbox;
              return [c.left + f.left + f.width * 0.62, c.top + f.top + f.height * 0.45];
            }"""
        )
        page.mouse.move(*box)
        page.wait_for_timeout(400)
        png = page.screenshot(clip={"x": 0, "y": 0, "width": 1040, "height": 720})
        browser.close()
    shutil.rmtree(folder)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    image.save(OUTPUT, optimize=True)
    print(f"{OUTPUT}: {OUTPUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
