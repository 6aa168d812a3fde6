"""A small map of where a product comes from, drawn as inline SVG from a packaged data set
(Natural Earth's 1:110m countries, as npm's `world-atlas` ships them as TopoJSON): the
countries where its raw materials were grown and where it was processed, highlighted on
the land around them, with a dot on each. No tiles, no script, nothing fetched: the page
stays one request.

The map is cropped to the countries involved and its coordinates rounded to whole units
of a 320-wide view box, with relative path commands, so it costs a few kilobytes. The
atlas comes with `make install` (npm); a server without it (installed from PyPI alone)
shows no map, and says so in its log once.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycountry
from babel import Locale, UnknownLocaleError
from sqlalchemy import select

from api.i18n import current_language
from ledger.indexer import schema
from ledger.queries import ReadModel
from ledger.records import Batch

log = logging.getLogger("api")

ATLAS = Path(__file__).resolve().parent.parent / "node_modules" / "world-atlas" / "countries-110m.json"
#: The view box's width; its height follows the region's shape, within these bounds.
WIDTH = 320
MIN_HEIGHT, MAX_HEIGHT = 160, 360
#: The least span of the map (degrees), so a small country is shown among its neighbours.
MIN_SPAN_LON, MIN_SPAN_LAT = 36.0, 22.0
#: Margin around the countries involved, as a share of their span.
MARGIN = 0.25
#: Rings smaller than this many square units once drawn are islands too small to see.
MIN_RING_AREA = 6.0
DOT_RADIUS = 4
#: The land around is context: drawn on a coarser grid than the countries involved (a
#: third fewer bytes; a unit is about a pixel on a phone).
LAND_GRID = 2

Point = tuple[float, float]
Ring = list[Point]


@dataclass(frozen=True)
class Atlas:
    """Every country's polygons (ISO 3166-1 numeric code -> rings of lon/lat) and the land."""

    countries: dict[str, list[Ring]]
    land: list[Ring]


def _decode_arcs(topology: dict[str, Any]) -> list[Ring]:
    """TopoJSON's quantised, delta-encoded arcs as lon/lat points."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def _ring(arcs: list[Ring], indexes: Iterable[int]) -> Ring:
    """A ring stitched from arcs (a negative index is arc ~i reversed); shared ends once."""
    ring: Ring = []
    for index in indexes:
        points = arcs[index] if index >= 0 else arcs[~index][::-1]
        ring.extend(points[1:] if ring else points)
    return ring


def _polygons(arcs: list[Ring], geometry: dict[str, Any]) -> list[Ring]:
    """Every ring (outer and holes) of a Polygon or MultiPolygon geometry."""
    if geometry.get("type") == "Polygon":
        return [_ring(arcs, r) for r in geometry["arcs"]]
    if geometry.get("type") == "MultiPolygon":
        return [_ring(arcs, r) for polygon in geometry["arcs"] for r in polygon]
    return []


@functools.cache
def atlas(path: Path = ATLAS) -> Atlas | None:
    """The packaged atlas, read once (None: not installed, logged once)."""
    try:
        topology = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("no origin map on product pages: %s cannot be read (%s); `make install` brings it", path, exc)
        return None
    arcs = _decode_arcs(topology)
    countries = {
        str(g["id"]): _polygons(arcs, g) for g in topology["objects"]["countries"]["geometries"] if g.get("id") is not None
    }
    land = [ring for g in topology["objects"]["land"]["geometries"] for ring in _polygons(arcs, g)]
    return Atlas(countries, land)


def _numeric(alpha2: str) -> str | None:
    """A country's ISO 3166-1 numeric code (the atlas's ids) from its alpha-2 code."""
    country = pycountry.countries.get(alpha_2=alpha2)
    return country.numeric if country else None


def country_name(alpha2: str, language: str) -> str:
    """A country's name in `language` (CLDR, through Babel), else its code."""
    try:
        return str(Locale.parse(language).territories.get(alpha2, alpha2))
    except (UnknownLocaleError, ValueError):
        return alpha2


def _area(ring: Sequence[Point]) -> float:
    """The signed area of a ring (shoelace), in its own units."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True)) / 2


def _main_ring(rings: list[Ring]) -> Ring:
    """A country's largest ring: its mainland, which decides the crop and the dot (France
    is drawn whole, but the map is not stretched to French Guiana)."""
    return max(rings, key=lambda r: abs(_area(r)))


@dataclass(frozen=True)
class _Frame:
    """The crop (lon/lat box) and the projection into the view box: equirectangular,
    with longitudes shrunk by the cosine of the middle latitude."""

    west: float
    south: float
    east: float
    north: float
    scale: float
    height: int

    @classmethod
    def around(cls, rings: list[Ring]) -> _Frame:
        lons = [lon for ring in rings for lon, _ in ring]
        lats = [lat for ring in rings for _, lat in ring]
        span_lon = max(max(lons) - min(lons), MIN_SPAN_LON) * (1 + 2 * MARGIN)
        span_lat = max(max(lats) - min(lats), MIN_SPAN_LAT) * (1 + 2 * MARGIN)
        mid_lon, mid_lat = (max(lons) + min(lons)) / 2, (max(lats) + min(lats)) / 2
        shrink = math.cos(math.radians(mid_lat))
        # Keep the view box's height within bounds by widening the narrower side.
        aspect = span_lat / (span_lon * shrink)
        if aspect * WIDTH > MAX_HEIGHT:
            span_lon = span_lat / (MAX_HEIGHT / WIDTH) / shrink
        elif aspect * WIDTH < MIN_HEIGHT:
            span_lat = span_lon * shrink * (MIN_HEIGHT / WIDTH)
        scale = WIDTH / (span_lon * shrink)
        return cls(
            mid_lon - span_lon / 2, mid_lat - span_lat / 2, mid_lon + span_lon / 2, mid_lat + span_lat / 2, scale,
            round(span_lat * scale),
        )  # fmt: skip

    def point(self, lon: float, lat: float) -> tuple[int, int]:
        """A lon/lat point in whole view box units, pinned to the crop's edge when outside
        it (so a continent's far coasts cost nothing; the fill inside stays right)."""
        lon, lat = min(max(lon, self.west), self.east), min(max(lat, self.south), self.north)
        shrink = math.cos(math.radians((self.north + self.south) / 2))
        return round((lon - self.west) * shrink * self.scale), round((self.north - lat) * self.scale)

    def touches(self, ring: Ring) -> bool:
        return any(self.west <= lon <= self.east and self.south <= lat <= self.north for lon, lat in ring)


def _collinear(a: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> bool:
    """Whether b lies on the line through a and c, between them or beyond c."""
    return (
        (b[0] - a[0]) * (c[1] - a[1]) == (b[1] - a[1]) * (c[0] - a[0])
        and (b[0] - a[0]) * (c[0] - b[0]) >= 0
        and (b[1] - a[1]) * (c[1] - b[1]) >= 0
    )


def _path(frame: _Frame, rings: list[Ring], grid: int = 1) -> str:
    """SVG path data of the rings inside the frame: relative moves, points on a `grid` of
    whole units, repeated and collinear points dropped, specks left out."""
    parts = []
    for ring in rings:
        if not frame.touches(ring):
            continue
        points: list[tuple[int, int]] = []
        for lon, lat in ring:
            x, y = frame.point(lon, lat)
            p = (round(x / grid) * grid, round(y / grid) * grid)
            if points and p == points[-1]:
                continue
            if len(points) >= 2 and _collinear(points[-2], points[-1], p):
                points[-1] = p  # the middle point adds nothing (a coast pinned to the crop's edge)
            else:
                points.append(p)
        if len(points) < 3 or abs(_area(points)) < MIN_RING_AREA:
            continue
        steps = " ".join(f"{x1 - x0} {y1 - y0}" for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False))
        parts.append(f"M{points[0][0]} {points[0][1]}l{steps}z")
    return "".join(parts)


def _centre(frame: _Frame, ring: Ring) -> tuple[int, int]:
    """Where a country's dot goes: its mainland's centroid in the view box."""
    points = [frame.point(lon, lat) for lon, lat in ring]
    area = _area(points)
    if not area:
        return points[0]
    pairs = list(zip(points, [*points[1:], points[0]], strict=True))
    cx = sum((x0 + x1) * (x0 * y1 - x1 * y0) for (x0, y0), (x1, y1) in pairs) / (6 * area)
    cy = sum((y0 + y1) * (x0 * y1 - x1 * y0) for (x0, y0), (x1, y1) in pairs) / (6 * area)
    return round(cx), round(cy)


def _roles(grown: Iterable[str], processed: Iterable[str]) -> dict[str, str]:
    """Country (ISO alpha-2) -> "grown" or "processed", grown first; a country that did
    both counts as grown."""
    roles = dict.fromkeys((c for c in grown if c), "grown")
    for code in processed:
        if code:
            roles.setdefault(code, "processed")
    return roles


def origin_map(grown: Iterable[str], processed: Iterable[str]) -> dict[str, Any] | None:
    """The map of the countries (ISO alpha-2) where the raw materials were grown and where
    the product was processed, as the template draws it; None when no country is known
    or the atlas is not installed."""
    found = atlas()
    if found is None:
        return None
    roles = _roles(grown, processed)
    drawn = {code: rings for code in roles if (rings := found.countries.get(_numeric(code) or ""))}
    if not drawn:
        return None
    frame = _Frame.around([_main_ring(rings) for rings in drawn.values()])
    language = current_language()
    countries = [
        {
            "code": code,
            "name": country_name(code, language),
            "role": roles[code],
            "path": _path(frame, rings),
            "dot": _centre(frame, _main_ring(rings)),
        }
        for code, rings in drawn.items()
    ]
    return {
        "width": WIDTH,
        "height": frame.height,
        "land": _path(frame, found.land, LAND_GRID),
        "countries": countries,
        "dot_radius": DOT_RADIUS,
        "grown": [c["name"] for c in countries if c["role"] == "grown"],
        "processed": [c["name"] for c in countries if c["role"] == "processed"],
    }


def lineage_map(model: ReadModel, batch: Batch, lots: Mapping[str, Batch | None], raw_lots: set[str]) -> dict[str, Any] | None:
    """The map of a lot's lineage (`lots`, by id; `raw_lots`: the ids of its leaves): grown
    where the raw lots' suppliers are registered, processed where the other lots' are (a
    raw lot on its own was grown where its supplier is)."""
    raw = raw_lots or {batch.batch_id}
    suppliers = {bid: lot.supplier for bid, lot in lots.items() if lot is not None and lot.supplier}
    suppliers.setdefault(batch.batch_id, batch.supplier)
    a = schema.actors
    with model.store.engine.connect() as conn:
        rows = conn.execute(select(a.c.address, a.c.country).where(a.c.address.in_(set(suppliers.values())))).all()
    country = {address: code for address, code in rows}
    grown = sorted({country.get(s, "") for bid, s in suppliers.items() if bid in raw})
    processed = sorted({country.get(s, "") for bid, s in suppliers.items() if bid not in raw})
    return origin_map(grown, processed)
