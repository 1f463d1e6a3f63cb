"""Pedestrian crossings: people cross the road at the crossings (and only there), wait for a
gap or for the red light, and the traffic stops for them instead of driving through them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from worldmodels.data.driving import PRESETS, crossings, generate, traffic
from worldmodels.data.driving.pedestrians import PEDESTRIAN
from worldmodels.data.driving.world import ROAD, SIDEWALK

DEBUG = PRESETS["debug"]


def vehicle(x: float, speed: float) -> SimpleNamespace:
    """A car on a road along +x, at (x, 2) heading +x (highway-env's attributes)."""
    return SimpleNamespace(position=np.array([x, 2.0]), velocity=np.array([speed, 0.0]),
                           speed=speed, LENGTH=4.6, WIDTH=1.9)  # fmt: skip


def walker(arrive: float = 0.0, speed: float = 1.0) -> crossings.Walker:
    return crossings.Walker(crossings.WALKER_ID, 1, speed, 0.0, arrive)


def test_a_pedestrian_waits_for_a_gap_then_holds_the_traffic():
    # A zebra across a road along x: from (0, -4) to (0, 4), 9 m to walk kerb to kerb.
    zebra = crossings.Crossing(np.array([0.0, -4.0]), np.array([0.0, 4.0]), 3.0, [walker()])
    assert zebra.length == pytest.approx(8.0 + 2 * crossings.KERB_STEP)
    road = SimpleNamespace(vehicles=[vehicle(-20.0, 10.0)])  # could not stop in time
    assert crossings.envelope(10.0) > zebra.gap(road.vehicles[0].position) - 2.6
    zebra.step(road, 0.0)
    assert zebra.walkers[0].start == np.inf and not zebra.busy
    road.vehicles = [vehicle(-60.0, 10.0), vehicle(-8.0, 0.0), vehicle(20.0, 10.0)]
    zebra.step(road, 0.5)  # far, stopped, and driving away: the pedestrian goes
    w = zebra.walkers[0]
    assert w.start == 0.5 and w.end == pytest.approx(0.5 + zebra.length / w.speed)
    assert zebra.busy
    road.vehicles = [vehicle(0.5, 0.0)]  # on the strip: nobody steps off
    late = walker(arrive=1.0)
    zebra.walkers.append(late)
    zebra.step(road, 1.0)
    assert late.start == np.inf


def test_at_a_light_pedestrians_walk_only_while_the_red_outlasts_their_crossing():
    light = {"red": 20.0, "cycle": 40.0, "phase": 0.0}  # red for the vehicles from 0 to 20 s
    slow, fast = walker(speed=0.5), walker(speed=1.5)  # 18 s and 6 s to cross 9 m
    crossing = crossings.Crossing(
        np.array([0.0, -4.0]), np.array([0.0, 4.0]), 3.0, [slow, fast], light=light
    )
    road = SimpleNamespace(vehicles=[])
    crossing.step(road, 10.0)  # 10 s of red left
    assert fast.start == 10.0 and slow.start == np.inf
    assert crossing.red(10.0) and not crossing.red(25.0)
    crossing.step(road, 25.0)  # green: the slow one waits for the next red
    assert slow.start == np.inf
    crossing.step(road, 40.0)
    assert slow.start == 40.0


def overlap(a, b) -> bool:
    """Whether two agents' footprints (oriented rectangles) overlap: separating axes."""

    def corners(s):
        c, n = np.array([np.cos(s.yaw), np.sin(s.yaw)]), np.array([-np.sin(s.yaw), np.cos(s.yaw)])
        return np.array([[s.x, s.y] + u * c * s.length / 2 + v * n * s.width / 2
                         for u, v in ((1, 1), (1, -1), (-1, -1), (-1, 1))])  # fmt: skip

    A, B = corners(a), corners(b)
    for P in (A, B):
        for k in range(4):
            edge = P[(k + 1) % 4] - P[k]
            axis = np.array([-edge[1], edge[0]])
            if (A @ axis).max() < (B @ axis).min() or (B @ axis).max() < (A @ axis).min():
                return False
    return True


def in_strip(crossing: dict, xy: np.ndarray, beyond: float = crossings.KERB_STEP + 0.1):
    """(N,) bool: points (N, 2) inside a crossing's strip, from kerb to kerb and `beyond` m
    further (by default to where its pedestrians wait), world frame."""
    a, b = np.asarray(crossing["a"]), np.asarray(crossing["b"])
    length = np.linalg.norm(b - a)
    across = (b - a) / length
    rel = xy - (a + b) / 2
    along = rel @ np.array([-across[1], across[0]])
    return (np.abs(rel @ across) <= length / 2 + beyond) & (np.abs(along) <= crossing["width"] / 2)


@pytest.fixture(scope="module", params=[("street", 0), ("intersection", 1)])
def scene(request):
    """A sequence with a crossing at its traffic light, and one with zebras (debug preset);
    in each, someone crosses from kerb to kerb within the sequence."""
    name, seed = request.param
    spec = traffic.get_scenario(name)
    record, _ = generate.simulate_safely(spec, seed, DEBUG)
    static, walkers = generate.build_surroundings(spec, record, seed, DEBUG)
    return record, static, walkers


def test_pedestrians_cross_the_road_at_the_crossings_and_only_there(scene):
    record, static, walkers = scene
    assert record.crossings
    for people in walkers:  # nobody walks in the road away from a crossing
        xy = np.array([[a.x, a.y] for a in people if a.class_id == PEDESTRIAN])
        on_road = static.ground_at(xy) == ROAD
        at_crossing = np.any([in_strip(c, xy) for c in record.crossings], axis=0)
        assert not np.any(on_road & ~at_crossing)
    # ... and someone crosses there: on the sidewalk at one end of the strip before stepping
    # off, on the road inside the strip while crossing, on the sidewalk at the other end after.
    duration = len(walkers) / DEBUG.data.frame_rate
    crossed = 0
    for crossing in record.crossings:
        a, b = np.asarray(crossing["a"]), np.asarray(crossing["b"])
        across = (b - a) / np.linalg.norm(b - a)
        for w in crossing["walkers"]:
            if not 0 < w.start < w.end < duration:
                continue
            track = [(t / DEBUG.data.frame_rate, p) for t, people in enumerate(walkers)
                     for p in people if p.agent_id == w.agent_id]  # fmt: skip
            xy = np.array([[p.x, p.y] for _, p in track])
            side = np.sign((xy - (a + b) / 2) @ across) * w.direction  # -1 start, +1 far side
            ground, strip = static.ground_at(xy), in_strip(crossing, xy)
            kerbs = in_strip(crossing, xy, beyond=5.0) & (ground == SIDEWALK)  # the strip's ends
            time = np.array([t for t, _ in track])
            before, during, after = time < w.start, (time > w.start) & (time < w.end), time > w.end
            assert np.any(before & kerbs & (side < 0))
            assert np.all(strip[during]) and np.any(during & (ground == ROAD))
            assert np.any(after & kerbs & (side > 0))
            crossed += 1
    assert crossed > 0


def test_vehicles_never_drive_through_pedestrians(scene):
    record, static, walkers = scene
    for t, people in enumerate(walkers):
        peds = [a for a in people if a.class_id == PEDESTRIAN]
        for v in record.agents[t] + static.parked:
            hit = [p.agent_id for p in peds if overlap(p, v)]
            assert not hit, f"frame {t}: vehicle {v.agent_id} overlaps pedestrians {hit}"
    for parked in static.parked:  # nobody parks on a crossing
        xy = np.array([[parked.x, parked.y]])
        assert not any(in_strip(c, xy)[0] for c in record.crossings)
