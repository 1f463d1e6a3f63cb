"""Bootstrap intervals: coverage of the mean, the effect of grouping, reproducibility."""

import numpy as np
import pytest

from worldmodels.metrics.bootstrap import mean_interval, statistic_interval, statistics_intervals


def test_interval_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    interval = mean_interval(values)
    assert interval.low < values.mean() < interval.high
    assert interval.excludes_zero() and interval.unit == "clips" and interval.groups == 400
    assert mean_interval(values) == interval  # same seed, same interval
    assert abs((interval.high - interval.low) - 2 * 1.96 / 20) < 0.03  # ~ 2 * 1.96 sd / sqrt(n)


def test_noise_around_zero_gives_an_interval_that_contains_zero():
    values = np.random.default_rng(1).normal(0.0, 1.0, size=200)
    interval = mean_interval(values)
    assert not interval.excludes_zero()
    assert "contains 0" in interval.format()


def test_grouping_widens_the_interval_when_clips_of_an_episode_agree():
    """10 episodes of 40 identical clips each carry the information of 10 values, not 400:
    resampling episodes must give a wider interval than resampling clips."""
    rng = np.random.default_rng(2)
    episode_means = rng.normal(0.5, 1.0, size=10)
    values = np.repeat(episode_means, 40)
    groups = np.repeat(np.arange(10), 40)
    by_clip, by_episode = mean_interval(values), mean_interval(values, groups)
    assert by_episode.groups == 10 and by_episode.unit == "episodes"
    assert (by_episode.high - by_episode.low) > 4 * (by_clip.high - by_clip.low)
    assert by_episode.estimate == pytest.approx(values.mean())


def test_statistic_interval_matches_mean_interval_for_the_mean():
    rng = np.random.default_rng(3)
    values, groups = rng.normal(2.0, 1.0, 300), rng.integers(0, 30, 300)
    direct = mean_interval(values, groups, samples=1000)
    general = statistic_interval(lambda rows: values[rows].mean(), groups, samples=1000)
    assert general.estimate == pytest.approx(direct.estimate)
    assert general.low == pytest.approx(direct.low, abs=0.05)
    assert general.high == pytest.approx(direct.high, abs=0.05)


def test_many_statistics_share_the_resamples_of_one():
    """statistics_intervals draws what statistic_interval draws: each entry's interval is the
    one statistic_interval gives; an entry NaN on some resamples drops those resamples."""
    rng = np.random.default_rng(4)
    values, groups = rng.normal(1.0, 1.0, 120), rng.integers(0, 12, 120)
    first = lambda rows: values[rows].mean()
    second = lambda rows: np.median(values[rows])
    together = statistics_intervals(
        lambda rows: np.array([first(rows), second(rows)]), groups, samples=200, unit="sequences"
    )
    alone = [statistic_interval(f, groups, samples=200) for f in (first, second)]
    for both, one in zip(together, alone):
        assert (both.estimate, both.low, both.high) == (one.estimate, one.low, one.high)
    assert together[0].unit == "sequences" and together[0].groups == 12
    holes = statistics_intervals(
        lambda rows: np.array([np.nan if 0 in rows else 1.0, np.nan]), groups, samples=50
    )
    assert holes[0].low == holes[0].high == 1.0 and np.isnan(holes[1].low)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one group per value"):
        mean_interval([1.0, 2.0], groups=[0])
    with pytest.raises(ValueError, match="non-finite"):
        mean_interval([1.0, float("inf")])
