"""Pristine thermal-like scenes: a temperature field rendered as an LWIR camera would see it.

A scene is built in kelvin relative to the ground near the camera, then turned into pixels:

1. background: a cold sky (colder towards the zenith, faint clouds) above a horizon of random
   height and tilt, and ground with a near-to-far gradient, 1/f texture and smooth patches;
   sometimes a warm asphalt road in perspective;
2. objects placed on the ground and scaled by perspective from one camera height, painted far
   to near: buildings (warm windows at night, cold sky-reflecting glass by day), trees and a
   tree line (cooler than the ground by day, warmer at night), vehicles (hot engine, wheels and
   exhaust, dark windows) and people (warm faces, cooler clothes);
3. camera: optics blur (soft edges), thermal blooming (a faint halo around warm objects),
   vignetting (a radial fall-off) and a little temporal noise (NETD 40 mK);
4. output: 8-bit through a linear automatic gain control (robust min/max of the scene mapped onto
   a random display range, so contrast varies between scenes), or 16-bit radiometric counts
   (a linear 14-bit response, 40..100 counts per kelvin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from .canvas import Canvas
from .fields import power_law_noise

#: Largest radiometric count of the 16-bit variant (a 14-bit detector).
COUNTS_MAX = 16383
#: Temporal noise of the simulated camera (noise-equivalent temperature difference), kelvin.
NETD_KELVIN = 0.04
#: Robust range of the automatic gain control (percentiles of the scene temperatures).
AGC_PERCENTILES = (0.5, 99.7)


@dataclass(frozen=True)
class Scene:
    """A rendered temperature field and the camera's two ways of turning it into pixels."""

    temperature: np.ndarray
    display_range: tuple[float, float]
    counts_offset: float
    counts_per_kelvin: float

    def to_uint8(self) -> np.ndarray:
        """8-bit frame: the automatic gain control maps the robust range onto display_range."""
        low, high = np.percentile(self.temperature, AGC_PERCENTILES)
        out_low, out_high = self.display_range
        grey = out_low + (self.temperature - low) * ((out_high - out_low) / max(high - low, 1e-6))
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)

    def to_counts(self) -> np.ndarray:
        """16-bit frame: radiometric counts, linear in temperature, within 0..COUNTS_MAX."""
        counts = self.counts_offset + self.counts_per_kelvin * self.temperature
        return np.clip(np.round(counts), 0, COUNTS_MAX).astype(np.uint16)


@dataclass(frozen=True)
class _Layout:
    """Scene geometry: horizon row per column and the camera height that sets object sizes."""

    height: int
    width: int
    horizon: np.ndarray
    camera_height: float
    night: bool
    foliage: np.ndarray

    def pixels_per_metre(self, x: float, y_base: float) -> float:
        """Image size of one metre standing on the ground at row ``y_base`` (flat ground)."""
        column = int(np.clip(x, 0, self.width - 1))
        return max(y_base - float(self.horizon[column]), 0.0) / self.camera_height

    def ground_row(self, rng: np.random.Generator, x: float, near: float, far: float) -> float:
        """A ground row between fractions ``far`` (0 = horizon) and ``near`` (1 = bottom)."""
        column = int(np.clip(x, 0, self.width - 1))
        top = max(float(self.horizon[column]), 0.0)
        return top + (self.height - 1 - top) * rng.uniform(far, near)


def synthesize_scene(rng: np.random.Generator, size: tuple[int, int]) -> Scene:
    """One random scene of ``size`` = (height, width), fully determined by ``rng``."""
    from scipy.ndimage import gaussian_filter

    height, width = size
    unit = min(height, width) / 256.0
    layout = _draw_layout(rng, height, width)
    background = _background(rng, layout)
    canvas = Canvas(background.copy())
    if layout.horizon.mean() > 0.12 * height and rng.random() < 0.5:
        _tree_line(rng, canvas, layout)
    for _, paint in sorted(_objects(rng, layout), key=lambda entry: entry[0]):
        paint(canvas)
    warm = np.maximum(canvas.field - background, 0.0)
    blur, halo, halo_gain = rng.uniform(0.8, 1.4), rng.uniform(3.0, 7.0), rng.uniform(0.05, 0.2)
    field = gaussian_filter(canvas.field, blur * unit, mode="nearest")
    field += halo_gain * gaussian_filter(warm, halo * unit, mode="nearest")
    field -= _vignetting(rng, height, width)
    field += rng.normal(0.0, NETD_KELVIN, field.shape)
    low = rng.uniform(0.0, 50.0)
    return Scene(
        temperature=field,
        display_range=(low, rng.uniform(max(low + 150.0, 190.0), 250.0)),
        counts_offset=rng.uniform(6000.0, 9000.0),
        counts_per_kelvin=rng.uniform(40.0, 100.0),
    )


def _draw_layout(rng: np.random.Generator, height: int, width: int) -> _Layout:
    level = rng.uniform(0.1, 0.6) * height
    tilt = rng.uniform(-0.06, 0.06) * height
    columns = np.arange(width) / max(width - 1, 1) - 0.5
    relief = power_law_noise(rng, (1, width), 2.0)[0] * rng.uniform(0.0, 0.015) * height
    return _Layout(
        height=height,
        width=width,
        horizon=level + tilt * columns + relief,
        camera_height=rng.uniform(2.0, 6.0),
        night=bool(rng.random() < 0.5),
        foliage=power_law_noise(rng, (height, width), 1.2) * rng.uniform(0.3, 0.8),
    )


def _background(rng: np.random.Generator, layout: _Layout) -> np.ndarray:
    height, width = layout.height, layout.width
    rows = np.arange(height, dtype=np.float64)[:, None]
    horizon = layout.horizon[None, :]
    sky_low = rng.uniform(-5.0, -1.5)
    sky_high = sky_low - rng.uniform(4.0, 10.0)
    elevation = np.clip((horizon - rows) / max(float(layout.horizon.max()), 1.0), 0.0, 1.0)
    clouds = power_law_noise(rng, (height, width), 2.5) * rng.uniform(0.1, 1.2)
    sky = sky_low + (sky_high - sky_low) * elevation**0.7 + clouds
    distance = np.clip((rows - horizon) / np.maximum(height - horizon, 1.0), 0.0, 1.0)
    texture = power_law_noise(rng, (height, width), 1.0) * rng.uniform(0.25, 0.8)
    patches = power_law_noise(rng, (height, width), 2.0) * rng.uniform(0.4, 1.5)
    ground = rng.uniform(-1.5, 2.5) * distance + texture + patches
    ground_weight = np.clip(rows - horizon + 0.5, 0.0, 1.0)
    field = ground_weight * ground + (1.0 - ground_weight) * sky
    if rng.random() < 0.5:
        _road(rng, Canvas(field), layout, ground)
    return field


def _road(rng: np.random.Generator, canvas: Canvas, layout: _Layout, ground: np.ndarray) -> None:
    """A warm asphalt band narrowing towards a vanishing point on the horizon."""
    height, width = layout.height, layout.width
    vanish_x = rng.uniform(0.25, 0.75) * width
    vanish_y = float(layout.horizon[int(vanish_x)]) + 1.0
    bottom_x = vanish_x + rng.uniform(-0.35, 0.35) * width
    half_bottom = rng.uniform(0.12, 0.3) * width
    warmth = rng.uniform(0.5, 2.0) if layout.night else rng.uniform(1.5, 4.0)
    surface = ground * 0.3 + warmth
    canvas.polygon(
        [
            (vanish_y, vanish_x - 1.0),
            (vanish_y, vanish_x + 1.0),
            (height + 1.0, bottom_x + half_bottom),
            (height + 1.0, bottom_x - half_bottom),
        ],
        surface,
    )


def _tree_line(rng: np.random.Generator, canvas: Canvas, layout: _Layout) -> None:
    """A band of distant trees standing on the horizon, with a ragged top edge."""
    height, width = layout.height, layout.width
    rows = np.arange(height, dtype=np.float64)[:, None]
    profile = power_law_noise(rng, (1, width), 1.5)[0]
    band = (0.5 + 0.25 * profile).clip(0.1, 1.0) * rng.uniform(0.04, 0.12) * height
    top = (layout.horizon - band)[None, :]
    bottom = layout.horizon[None, :] + 1.0
    coverage = np.clip(rows - top + 0.5, 0.0, 1.0) * np.clip(bottom - rows + 0.5, 0.0, 1.0)
    canvas.cover(coverage, _foliage_temperature(rng, layout.night) + layout.foliage)


def _foliage_temperature(rng: np.random.Generator, night: bool) -> float:
    return rng.uniform(0.3, 1.5) if night else rng.uniform(-2.5, -0.5)


Painter = Callable[[Canvas], None]


def _objects(rng: np.random.Generator, layout: _Layout) -> list[tuple[float, Painter]]:
    """Objects as (ground row, painter); painting in ground-row order puts near over far."""
    width = layout.width
    objects: list[tuple[float, Painter]] = []
    n_people, n_vehicles = int(rng.integers(0, 7)), int(rng.integers(0, 4))
    if n_people + n_vehicles < 2:
        n_people = 2 - n_vehicles
    counts = {
        _building: int(rng.integers(0, 4)),
        _tree: int(rng.integers(0, 6)),
        _person: n_people,
        _vehicle: n_vehicles,
    }
    near_far = {
        _building: (0.25, 0.02),
        _tree: (0.4, 0.03),
        _person: (1.0, 0.1),
        _vehicle: (0.95, 0.08),
    }
    for kind, count in counts.items():
        near, far = near_far[kind]
        for _ in range(count):
            x = rng.uniform(0.03, 0.97) * width
            y_base = layout.ground_row(rng, x, near, far)
            scale = layout.pixels_per_metre(x, y_base)
            if scale * 1.5 < 4.0:  # too far away to show
                continue
            objects.append((y_base, partial(kind(rng, layout), x, y_base, scale)))
    return objects


def _person(rng: np.random.Generator, layout: _Layout) -> Callable[..., None]:
    stature = rng.uniform(1.55, 1.9)
    clothes = rng.uniform(4.0, 8.0) + (2.0 if layout.night else 0.0)
    skin = clothes + rng.uniform(2.0, 5.0)
    stride = rng.uniform(0.0, 0.25)

    def paint(x: float, y_base: float, scale: float, canvas: Canvas) -> None:
        h = stature * scale
        head_r = 0.065 * h
        hip = y_base - 0.47 * h
        shoulder = y_base - 0.82 * h
        for offset in (-1.0, 1.0):
            foot = x + offset * (0.05 + stride) * h
            canvas.polygon(
                [(hip, x + offset * 0.02 * h), (hip, x + offset * 0.1 * h),
                 (y_base, foot + offset * 0.04 * h), (y_base, foot - offset * 0.04 * h)],
                clothes - 1.5,
            )  # fmt: skip
        canvas.box(shoulder, x - 0.13 * h, hip + 0.03 * h, x + 0.13 * h, clothes, 0.05 * h)
        canvas.box(shoulder + 0.02 * h, x - 0.17 * h, hip - 0.05 * h, x - 0.11 * h, clothes, h)
        canvas.box(shoulder + 0.02 * h, x + 0.11 * h, hip - 0.05 * h, x + 0.17 * h, clothes, h)
        canvas.ellipse(shoulder - 0.9 * head_r, x, 1.15 * head_r, head_r, skin)

    return paint


def _vehicle(rng: np.random.Generator, layout: _Layout) -> Callable[..., None]:
    running = bool(rng.random() < 0.7)
    body = rng.uniform(2.0, 5.0) if running else rng.uniform(-0.5, 1.5)
    engine = body + (rng.uniform(6.0, 14.0) if running else 0.5)
    glass = body - rng.uniform(3.0, 6.0)
    tyres = body + (rng.uniform(2.0, 5.0) if running else 0.0)
    facing = 1.0 if rng.random() < 0.5 else -1.0
    length = rng.uniform(3.8, 5.0)

    def paint(x: float, y_base: float, scale: float, canvas: Canvas) -> None:
        w, wheel = length * scale, 0.33 * scale
        left, right = x - w / 2.0, x + w / 2.0
        sill, roof = y_base - 0.35 * scale, y_base - 1.45 * scale
        canvas.box(y_base - 0.95 * scale, left, sill, right, body, 0.15 * scale)
        cab_left = left + (0.3 if facing > 0 else 0.1) * w
        cab_right = right - (0.1 if facing > 0 else 0.3) * w
        canvas.box(roof, cab_left, y_base - 0.9 * scale, cab_right, body, 0.2 * scale)
        canvas.box(roof + 0.1 * scale, cab_left + 0.08 * w, y_base - 0.95 * scale,
                   cab_right - 0.08 * w, glass, 0.08 * scale)  # fmt: skip
        front = right - 0.16 * w if facing > 0 else left + 0.16 * w
        canvas.ellipse(y_base - 0.65 * scale, front, 0.25 * scale, 0.14 * w, engine)
        for axle in (left + 0.2 * w, right - 0.2 * w):
            canvas.ellipse(y_base - wheel, axle, wheel, wheel, tyres)
        if running:
            rear = left + 0.02 * w if facing > 0 else right - 0.02 * w
            canvas.ellipse(y_base - 0.3 * scale, rear, 0.07 * scale, 0.1 * scale, engine + 4.0)

    return paint


def _tree(rng: np.random.Generator, layout: _Layout) -> Callable[..., None]:
    foliage = _foliage_temperature(rng, layout.night)
    trunk = foliage + rng.uniform(-0.5, 1.0)
    tall = rng.uniform(3.0, 9.0)
    crown_ratio = rng.uniform(0.3, 0.5)

    def paint(x: float, y_base: float, scale: float, canvas: Canvas) -> None:
        h = tall * scale
        crown_r = crown_ratio * h
        canvas.box(y_base - 0.6 * h, x - 0.03 * h, y_base, x + 0.03 * h, trunk)
        canvas.ellipse(y_base - h + crown_r, x, crown_r, crown_r * 0.8, foliage + layout.foliage)

    return paint


def _building(rng: np.random.Generator, layout: _Layout) -> Callable[..., None]:
    night = layout.night
    wall = rng.uniform(0.3, 2.0) if night else rng.uniform(1.0, 4.0)
    roof = wall - rng.uniform(1.0, 4.0)
    pitched = bool(rng.random() < 0.6)
    wide, tall = rng.uniform(6.0, 18.0), rng.uniform(4.0, 9.0)
    floors, bays = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    lit = rng.random(floors * bays) < (0.7 if night else 0.0)
    window_temps = np.where(
        lit, wall + rng.uniform(3.0, 8.0, lit.size), wall - rng.uniform(1.0, 4.0, lit.size)
    )

    def paint(x: float, y_base: float, scale: float, canvas: Canvas) -> None:
        w, h = wide * scale, tall * scale
        left, top = x - w / 2.0, y_base - h
        canvas.box(top, left, y_base, left + w, wall)
        if pitched:
            canvas.polygon([(top, left - 0.03 * w), (top, left + 1.03 * w),
                            (top - 0.35 * h, x)], roof)  # fmt: skip
        else:
            canvas.box(top - 0.04 * h, left - 0.01 * w, top + 0.02 * h, left + 1.01 * w, roof)
        cell_w, cell_h = w / bays, 0.9 * h / floors
        for floor in range(floors):
            for bay in range(bays):
                wx, wy = left + (bay + 0.3) * cell_w, top + 0.1 * h + (floor + 0.3) * cell_h
                temp = float(window_temps[floor * bays + bay])
                canvas.box(wy, wx, wy + 0.45 * cell_h, wx + 0.4 * cell_w, temp)

    return paint


def _vignetting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Radial fall-off (kelvin equivalent) of the optics, centre slightly off the middle."""
    cy = height / 2.0 + rng.uniform(-0.05, 0.05) * height
    cx = width / 2.0 + rng.uniform(-0.05, 0.05) * width
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    radius2 = ((rows - cy) ** 2 + (cols - cx) ** 2) / ((height / 2.0) ** 2 + (width / 2.0) ** 2)
    return rng.uniform(0.3, 2.0) * radius2
