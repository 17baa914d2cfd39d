"""Draw the phone app's icons (网格通): a white 3 × 3 grid with a map pin on the app's teal.

Run once when the design changes; the PNGs are committed under api/static/field/icons/ (the
service does not need Pillow at run time for them). Drawn at 4× and scaled down: smooth edges
without a font or an SVG renderer.

    .venv/bin/python scripts/make_field_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "api" / "static" / "field" / "icons"
TEAL, WHITE, RED = (0, 92, 99), (255, 255, 255), (230, 57, 43)


def draw(size: int, maskable: bool) -> Image.Image:
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if maskable:  # full bleed: the platform cuts its own shape; content in the safe 80 %
        d.rectangle((0, 0, big, big), fill=TEAL)
        inset = big * 0.22
    else:
        d.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=TEAL)
        inset = big * 0.16
    lo, hi = inset, big - inset
    step = (hi - lo) / 3
    width = max(4, int(big * 0.035))
    half = width / 2
    d.rectangle((lo - half, lo - half, hi + half, hi + half), outline=WHITE, width=width)
    for i in (1, 2):
        x = lo + i * step
        d.line((x, lo, x, hi), fill=WHITE, width=width)
        d.line((lo, x, hi, x), fill=WHITE, width=width)
    # the pin: a circle over a triangle, standing in the middle cell
    cx, cy, r = big / 2, lo + step * 1.35, step * 0.62
    d.polygon([(cx - r * 0.78, cy + r * 0.45), (cx + r * 0.78, cy + r * 0.45),
               (cx, cy + r * 2.05)], fill=RED)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=RED)
    d.ellipse((cx - r * 0.4, cy - r * 0.4, cx + r * 0.4, cy + r * 0.4), fill=WHITE)
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("maskable-512.png", 512, True),
                                 ("apple-touch-icon.png", 180, True),
                                 ("favicon-32.png", 32, False)):
        image = draw(size, maskable)
        if name == "apple-touch-icon.png":  # iOS shows transparency as black
            image = image.convert("RGB")
        image.save(OUT / name, optimize=True)
        print(OUT / name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
