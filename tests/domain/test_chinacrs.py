import numpy as np
import prcoords
import pytest

from gridmap.domain import chinacrs

# points across mainland China, and two outside it (no offset there)
POINTS = [(116.397, 39.909), (121.4737, 31.2304), (113.2644, 23.1291), (104.0665, 30.5723),
          (108.9398, 34.3416), (126.6425, 45.7567), (87.6168, 43.8256), (2.35, 48.85),
          (-74.0, 40.7)]


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_wgs84_to_gcj02_matches_prcoords(lon: float, lat: float) -> None:
    ref = prcoords.wgs_gcj((lat, lon), True)
    got = chinacrs.wgs84_to_gcj02(lon, lat)
    assert got == pytest.approx((ref.lon, ref.lat), abs=1e-12)


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_gcj02_to_bd09_matches_prcoords(lon: float, lat: float) -> None:
    ref = prcoords.gcj_bd((lat, lon))
    assert chinacrs.gcj02_to_bd09(lon, lat) == pytest.approx((ref.lon, ref.lat), abs=1e-12)


def test_inverses_recover_wgs84_below_a_millimetre() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(75, 134, 10_000)
    lat = rng.uniform(18, 53, 10_000)
    back = chinacrs.gcj02_to_wgs84(*chinacrs.wgs84_to_gcj02(lon, lat))
    assert np.abs(back[0] - lon).max() < 1e-8 and np.abs(back[1] - lat).max() < 1e-8
    back = chinacrs.bd09_to_wgs84(*chinacrs.wgs84_to_bd09(lon, lat))
    assert np.abs(back[0] - lon).max() < 1e-8 and np.abs(back[1] - lat).max() < 1e-8


def test_offset_is_hundreds_of_metres_in_china() -> None:
    glon, _ = chinacrs.wgs84_to_gcj02(116.397, 39.909)
    assert 300 < abs(float(glon) - 116.397) * 85_000 < 800
