"""The ego's driver: random-but-safe highway-env meta-actions, decided once per frame."""

from __future__ import annotations

import numpy as np

# highway-env's discrete meta-action ids (DiscreteMetaAction.ACTIONS_ALL).
META_ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")
ACTION_ID = {name: i for i, name in enumerate(META_ACTIONS)}


def _lane_gaps(road, vehicle, lane_index) -> tuple[float, float, float, float]:
    """Bumper-to-bumper gaps (m) to the vehicles in front of and behind `vehicle` on a lane,
    and how fast each gap is closing (m/s); inf / 0 where there is no such vehicle."""
    front, rear = road.neighbour_vehicles(vehicle, lane_index)
    lane = road.network.get_lane(lane_index)
    s = lane.local_coordinates(vehicle.position)[0]
    gap_front = gap_rear = np.inf
    closing_front = closing_rear = 0.0
    if front is not None:
        half = (front.LENGTH + vehicle.LENGTH) / 2
        gap_front = lane.local_coordinates(front.position)[0] - s - half
        closing_front = vehicle.speed - front.speed
    if rear is not None:
        half = (rear.LENGTH + vehicle.LENGTH) / 2
        gap_rear = s - lane.local_coordinates(rear.position)[0] - half
        closing_rear = rear.speed - vehicle.speed
    return gap_front, closing_front, gap_rear, closing_rear


def _safe_gap(speed: float, closing: float) -> float:
    """Gap (m) the ego wants in front: 4 m + 1 s headway + 2 s of closing speed."""
    return 4.0 + 1.0 * speed + 2.0 * max(closing, 0.0)


def _free_lane_change(ego, road, rng: np.random.Generator) -> str | None:
    """LANE_LEFT or LANE_RIGHT towards a neighbouring lane with room, or None."""
    _from, _to, lane_id = ego.lane_index
    lanes = road.network.graph[_from][_to]
    for side in rng.permutation([-1, 1]):
        target = lane_id + int(side)
        if not 0 <= target < len(lanes) or not lanes[target].is_reachable_from(ego.position):
            continue
        front, closing_f, rear, closing_r = _lane_gaps(road, ego, (_from, _to, target))
        if front > _safe_gap(ego.speed, closing_f) and rear > 6.0 + 2.0 * max(closing_r, 0.0):
            return "LANE_LEFT" if side < 0 else "LANE_RIGHT"
    return None


def choose_action(ego, road, rng: np.random.Generator, lane_changes: bool, cruise: int) -> str:
    """A varied but safe driver, deciding at every frame.

    Blocked by a close or slower vehicle: overtake if a neighbouring lane has room, otherwise
    slow down. Free road: back up to the cruise speed index `cruise`; now and then change lane
    (10%) or speed (12%); otherwise IDLE. SLOWER by choice never goes down to the lowest target
    speed (often 0 m/s), and a stopped ego with room ahead drives on."""
    gap, closing, _, _ = _lane_gaps(road, ego, ego.lane_index)
    wanted = _safe_gap(ego.speed, closing)
    if gap < wanted:
        change = _free_lane_change(ego, road, rng) if lane_changes else None
        return change or "SLOWER"
    roomy = gap > wanted + 20.0
    if ego.speed_index == 0 or (ego.speed_index < cruise and roomy and rng.random() < 0.5):
        return "FASTER"
    u = rng.random()
    if lane_changes and u < 0.10:
        return _free_lane_change(ego, road, rng) or "IDLE"
    if u < 0.16 and roomy:
        return "FASTER"
    if u < 0.22 and ego.speed_index > 1:
        return "SLOWER"
    return "IDLE"
