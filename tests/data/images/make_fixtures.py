#!/usr/bin/env python3
"""Tiny decoder fixtures and what Pillow makes of them.

Writes small JPEG/PNG/WebP/GIF/BMP files covering the modes t5g_image must read, then records
Image.open(f).convert("RGB") (and, for files with EXIF, ImageOps.exif_transpose first) in
expected.json: size and the RGB bytes (base64). The C++ test decodes every file and compares.
PNG and BMP files are assembled byte by byte so that every bit depth / colour type / header
variant is present; the rest come from Pillow's encoders. Deterministic: reruns give the same
files for the same Pillow/libjpeg/libwebp.

Run from the project root with the reference Pillow (shared/oracle chroot):
  ../shared/oracle/run.sh python3 /host/tests/data/images/make_fixtures.py
(or any python3 with Pillow and numpy: python3 tests/data/images/make_fixtures.py).
"""
import base64
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 13, 9  # odd sizes exercise row padding and partial bytes


def pattern(w=W, h=H, channels=3, seed=0, maxv=255):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * maxv / max(w - 1, 1), y * maxv / max(h - 1, 1), (x + y) * maxv / (w + h - 2)] * 2, -1)[..., :channels]
    noise = rng.integers(-maxv // 8, maxv // 8 + 1, size=(h, w, channels))
    return np.clip(base + noise, 0, maxv).astype(np.uint16 if maxv > 255 else np.uint8)


# ----------------------------------------------------------------------------------------- PNG
def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-D array of sample values for one row (already interleaved)."""
    if depth == 8:
        return bytes(np.asarray(samples, np.uint8))
    if depth == 16:
        return np.asarray(samples, ">u2").tobytes()
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | int(s)
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(pixels, color_type, depth, plte=None, trns=None, exif=None, interlace=False):
    h, w = pixels.shape[:2]
    flat = pixels.reshape(h, w, -1)
    raw = bytearray()
    if interlace:
        for xs, ys, dx, dy in ADAM7:
            sub = flat[ys::dy, xs::dx]
            if sub.size == 0:
                continue
            for row in sub:
                raw += b"\x00" + pack_row(row.reshape(-1), depth)
    else:
        for row in flat:
            raw += b"\x00" + pack_row(row.reshape(-1), depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if exif is not None:
        out += chunk(b"eXIf", exif)
    if plte is not None:
        out += chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    return out


def tiff_orientation(value, little=True):
    e = "<" if little else ">"
    head = (b"II" if little else b"MM") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", value, 0) + struct.pack(e + "I", 0)
    return head + ifd


def png_fixtures():
    f = {}
    g = pattern(channels=1)
    f["png_gray8.png"] = png_bytes(g, 0, 8)
    f["png_gray8_trns.png"] = png_bytes(g, 0, 8, trns=struct.pack(">H", int(g[0, 0, 0])))
    for d in (1, 2, 4):
        f[f"png_gray{d}.png"] = png_bytes((g >> (8 - d)).astype(np.uint8), 0, d)
    g16 = pattern(channels=1, maxv=700, seed=1)  # values above and below 255: PIL clips
    f["png_gray16.png"] = png_bytes(g16, 0, 16)
    ga = pattern(channels=2, seed=2)
    f["png_ga8.png"] = png_bytes(ga, 4, 8)
    f["png_ga16.png"] = png_bytes(pattern(channels=2, seed=3, maxv=65535), 4, 16)
    rgb = pattern(seed=4)
    f["png_rgb8.png"] = png_bytes(rgb, 2, 8)
    f["png_rgb8_trns.png"] = png_bytes(rgb, 2, 8, trns=struct.pack(">HHH", *map(int, rgb[0, 0])))
    f["png_rgb8_interlaced.png"] = png_bytes(rgb, 2, 8, interlace=True)
    f["png_rgb16.png"] = png_bytes(pattern(seed=5, maxv=65535), 2, 16)
    f["png_rgb16_interlaced.png"] = png_bytes(pattern(seed=5, maxv=65535), 2, 16, interlace=True)
    f["png_rgba8.png"] = png_bytes(pattern(channels=4, seed=6), 6, 8)
    f["png_rgba16.png"] = png_bytes(pattern(channels=4, seed=7, maxv=65535), 6, 16)
    rng = np.random.default_rng(8)
    for d in (1, 2, 4, 8):
        n = 1 << d
        plte = rng.integers(0, 256, size=(n, 3))
        idx = rng.integers(0, n, size=(H, W, 1)).astype(np.uint8)
        f[f"png_pal{d}.png"] = png_bytes(idx, 3, d, plte=plte)
    plte = rng.integers(0, 256, size=(5, 3))  # short palette: indices 5.. are out of range
    idx = rng.integers(0, 12, size=(H, W, 1)).astype(np.uint8)
    f["png_pal8_short_trns.png"] = png_bytes(idx, 3, 8, plte=plte, trns=bytes([0, 128, 255]))
    idx = rng.integers(0, 10, size=(H, W, 1)).astype(np.uint8)  # grey-ramp palette, still mode "P" in PNG
    f["png_pal8_grey_short.png"] = png_bytes(idx, 3, 8, plte=[[i, i, i] for i in range(6)])
    f["png_pal4_interlaced.png"] = png_bytes(rng.integers(0, 16, size=(H, W, 1)).astype(np.uint8), 3, 4,
                                             plte=rng.integers(0, 256, size=(16, 3)), interlace=True)
    f["png_exif6.png"] = png_bytes(rgb, 2, 8, exif=tiff_orientation(6, little=False))
    return f


# ----------------------------------------------------------------------------------------- BMP
def bmp_bytes(pixels_rows, bits, width, height, header_size=40, compression=0, palette=None, masks=None,
              top_down=False, colors_used=0, palette_entry=4):
    """pixels_rows: list of already-packed rows (top row first), without padding."""
    stride = ((width * bits + 31) // 32) * 4
    rows = [r + b"\x00" * (stride - len(r)) for r in pixels_rows]
    data = b"".join(rows if top_down else rows[::-1])
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        dib = struct.pack("<IiiHHIIiiII", header_size, width, -height if top_down else height, 1, bits, compression,
                          len(data), 2835, 2835, colors_used, 0)
        if header_size >= 52:
            m = list(masks or [0, 0, 0]) + [0]
            dib += struct.pack("<IIII", *m[:4])[: min(16, header_size - 40)]
        dib += b"\x00" * (header_size - len(dib))
    extra = b""
    if header_size == 40 and compression == 3:
        extra = struct.pack("<III", *masks)
    pal = b""
    if palette is not None:
        for r, g, b in palette:
            pal += bytes([b, g, r]) + (b"\x00" if palette_entry == 4 else b"")
    offset = 14 + len(dib) + len(extra) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    return head + dib + extra + pal + data


def bmp_fixtures():
    f = {}
    rgb = pattern(seed=10)
    rows24 = [bytes(r[:, ::-1].reshape(-1)) for r in rgb]  # BGR
    f["bmp_24.bmp"] = bmp_bytes(rows24, 24, W, H)
    f["bmp_24_topdown.bmp"] = bmp_bytes(rows24, 24, W, H, top_down=True)
    f["bmp_24_v5.bmp"] = bmp_bytes(rows24, 24, W, H, header_size=124)
    f["bmp_24_v4.bmp"] = bmp_bytes(rows24, 24, W, H, header_size=108)
    rows32 = [bytes(np.concatenate([r[:, ::-1], np.full((W, 1), 77, np.uint8)], 1).reshape(-1)) for r in rgb]
    f["bmp_32.bmp"] = bmp_bytes(rows32, 32, W, H)
    # 32-bit bitfields, R in the top byte (Pillow's "XBGR" layout)
    rows32x = [bytes(np.concatenate([np.zeros((W, 1), np.uint8), r[:, ::-1]], 1).reshape(-1)) for r in rgb]
    f["bmp_32_bitfields.bmp"] = bmp_bytes(rows32x, 32, W, H, compression=3, masks=(0xFF000000, 0xFF0000, 0xFF00))
    f["bmp_32_bitfields_v5.bmp"] = bmp_bytes(rows32x, 32, W, H, header_size=124, compression=3,
                                             masks=(0xFF000000, 0xFF0000, 0xFF00))
    v = pattern(seed=11, maxv=31).astype(np.uint32)
    p555 = (v[..., 0] << 10) | (v[..., 1] << 5) | v[..., 2]
    f["bmp_16_555.bmp"] = bmp_bytes([p555[y].astype("<u2").tobytes() for y in range(H)], 16, W, H)
    g6 = pattern(seed=12, maxv=63).astype(np.uint32)
    p565 = ((v[..., 0] & 31) << 11) | (g6[..., 1] << 5) | (v[..., 2] & 31)
    f["bmp_16_565.bmp"] = bmp_bytes([p565[y].astype("<u2").tobytes() for y in range(H)], 16, W, H, compression=3,
                                    masks=(0xF800, 0x07E0, 0x001F))
    rng = np.random.default_rng(13)
    for bits in (1, 4, 8):
        n = 1 << bits
        palette = rng.integers(0, 256, size=(n, 3))
        idx = rng.integers(0, n, size=(H, W))
        rows = [pack_row(idx[y], bits) for y in range(H)]
        f[f"bmp_{bits}.bmp"] = bmp_bytes(rows, bits, W, H, palette=palette)
    # short palette (colours used = 6) with indices beyond it, OS/2 core header (BGR triples)
    palette = rng.integers(0, 256, size=(6, 3))
    idx = rng.integers(0, 9, size=(H, W))
    f["bmp_8_short_palette.bmp"] = bmp_bytes([pack_row(idx[y], 8) for y in range(H)], 8, W, H, palette=palette, colors_used=6)
    idx = rng.integers(0, 10, size=(H, W))  # grey-ramp palette of 6: Pillow reads mode "L"
    f["bmp_8_grey_short.bmp"] = bmp_bytes([pack_row(idx[y], 8) for y in range(H)], 8, W, H,
                                          palette=[[i, i, i] for i in range(6)], colors_used=6)
    palette = rng.integers(0, 256, size=(256, 3))
    idx = rng.integers(0, 256, size=(H, W))
    f["bmp_8_os2.bmp"] = bmp_bytes([pack_row(idx[y], 8) for y in range(H)], 8, W, H, header_size=12, palette=palette,
                                   palette_entry=3)
    f["bmp_24_os2.bmp"] = bmp_bytes(rows24, 24, W, H, header_size=12)
    return f


# ------------------------------------------------------------------------------- Pillow-encoded
def save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def exif_block(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


def pil_fixtures():
    f = {}
    rgb = Image.fromarray(pattern(w=17, h=11, seed=20))
    f["jpeg_baseline420.jpg"] = save(rgb, "JPEG", quality=85)
    f["jpeg_444.jpg"] = save(rgb, "JPEG", quality=90, subsampling=0)
    f["jpeg_422.jpg"] = save(rgb, "JPEG", quality=90, subsampling=1)
    f["jpeg_progressive.jpg"] = save(rgb, "JPEG", quality=80, progressive=True)
    f["jpeg_gray.jpg"] = save(rgb.convert("L"), "JPEG", quality=90)
    cmyk = Image.fromarray(pattern(w=17, h=11, channels=4, seed=21), "CMYK")
    f["jpeg_cmyk.jpg"] = save(cmyk, "JPEG", quality=90)
    for o in range(2, 9):
        f[f"jpeg_exif{o}.jpg"] = save(rgb, "JPEG", quality=85, exif=exif_block(o))
    f["webp_lossy.webp"] = save(rgb, "WEBP", quality=80)
    f["webp_lossless.webp"] = save(rgb, "WEBP", lossless=True)
    rgba = Image.fromarray(pattern(w=17, h=11, channels=4, seed=22), "RGBA")
    f["webp_lossy_alpha.webp"] = save(rgba, "WEBP", quality=80)
    f["webp_lossless_alpha.webp"] = save(rgba, "WEBP", lossless=True, exact=True)
    f["webp_exif6.webp"] = save(rgb, "WEBP", lossless=True, exif=exif_block(6))
    frames = [Image.fromarray(pattern(w=17, h=11, seed=s)) for s in (23, 24)]
    f["webp_animated.webp"] = save(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    p = rgb.quantize(colors=23)
    f["gif_basic.gif"] = save(p, "GIF")
    f["gif_interlaced.gif"] = save(p, "GIF", interlace=True)
    f["gif_transparent.gif"] = save(p, "GIF", transparency=5)
    f["gif_animated.gif"] = save(p, "GIF", save_all=True, append_images=[rgb.rotate(90).quantize(colors=7)], duration=50)
    # A frame smaller than the logical screen, at an offset: patch Pillow's output (screen size at
    # bytes 6..9, image descriptor left/top right after the ',' separator).
    small = bytearray(save(Image.fromarray(pattern(w=6, h=4, seed=25)).quantize(colors=9), "GIF", transparency=2))
    sep = small.index(b",", 13)
    struct.pack_into("<HH", small, 6, 15, 10)
    struct.pack_into("<HH", small, sep + 1, 7, 5)
    f["gif_offset_frame.gif"] = bytes(small)
    # ... and one extending past the screen: Pillow enlarges the image.
    big = bytearray(save(Image.fromarray(pattern(w=6, h=4, seed=26)).quantize(colors=9), "GIF"))
    sep = big.index(b",", 13)
    struct.pack_into("<HH", big, 6, 5, 3)
    struct.pack_into("<HH", big, sep + 1, 2, 1)
    f["gif_frame_past_screen.gif"] = bytes(big)
    # No colour table at all (global table removed): Pillow reads mode "L", index = grey level.
    nog = bytearray(save(p, "GIF"))
    gct = 3 << ((nog[10] & 7) + 1)
    nog[10] &= 0x7F
    del nog[13:13 + gct]
    f["gif_no_palette.gif"] = bytes(nog)
    f["bmp_pil_rgb.bmp"] = save(rgb, "BMP")
    f["bmp_pil_1bit.bmp"] = save(rgb.convert("1"), "BMP")
    f["bmp_pil_p.bmp"] = save(p, "BMP")
    return f


def main():
    files = {}
    files.update(png_fixtures())
    files.update(bmp_fixtures())
    files.update(pil_fixtures())
    expected = {"pillow": PIL.__version__, "files": {}}
    for name, data in sorted(files.items()):
        with open(os.path.join(HERE, name), "wb") as fh:
            fh.write(data)
        im = Image.open(io.BytesIO(data))
        rec = {"mode": im.mode}
        rgb = im.convert("RGB")
        rec["size"] = list(rgb.size)
        rec["rgb_b64"] = base64.b64encode(rgb.tobytes()).decode()
        if "exif" in name:
            t = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
            rec["exif_transposed_size"] = list(t.size)
            rec["exif_transposed_rgb_b64"] = base64.b64encode(t.tobytes()).decode()
        expected["files"][name] = rec
    with open(os.path.join(HERE, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)
    print(f"{len(files)} fixtures, {sum(map(len, files.values()))} bytes, Pillow {PIL.__version__}")


if __name__ == "__main__":
    main()
