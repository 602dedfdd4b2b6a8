import pytest

from gridmap.domain.codes import division_level, grid_code, parent_code, reading_order


def test_levels_and_parents() -> None:
    assert division_level("610199000000") == "county"
    assert division_level("610199101000") == "township"
    assert division_level("610199101201") == "community"
    assert parent_code("610199101201") == "610199101000"
    assert parent_code("610199101000") == "610199000000"
    assert parent_code("610199000000") is None


@pytest.mark.parametrize("bad", ["61019910120", "6101991012011", "61019910120x", ""])
def test_bad_division_codes(bad: str) -> None:
    with pytest.raises(ValueError, match="12-digit"):
        division_level(bad)


def test_grid_code_needs_a_community_and_a_sequence() -> None:
    assert grid_code("610199101201", 12) == "610199101201012"
    with pytest.raises(ValueError):
        grid_code("610199101000", 1)
    with pytest.raises(ValueError):
        grid_code("610199101201", 1000)


def test_reading_order_rows_north_to_south_each_west_to_east() -> None:
    # a 3x2 block of grid centroids, rows slightly tilted
    x = [300, 100, 200, 110, 310, 205]
    y = [98, 100, 99, 0, 2, 1]
    assert reading_order(x, y, band=20) == [1, 2, 0, 3, 5, 4]
