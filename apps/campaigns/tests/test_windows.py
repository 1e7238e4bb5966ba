"""Calling windows across time zones and daylight-saving changes (pure functions)."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from apps.campaigns.windows import window_next_open, window_open, windows_clean, zone_get
from apps.core.errors import ApplicationError

UTC = ZoneInfo("UTC")
NINE_TO_FIVE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_a_window_keeps_its_local_hours_across_the_us_spring_forward():
    new_york = zone_get("America/New_York")
    # Friday 6 March 2026: EST (UTC-5); Monday 9 March 2026: EDT (UTC-4). DST began Sunday 8 March.
    assert window_open(moment=utc(2026, 3, 6, 14, 0), zone=new_york, windows=NINE_TO_FIVE) is True  # 09:00 EST
    assert window_open(moment=utc(2026, 3, 6, 13, 59), zone=new_york, windows=NINE_TO_FIVE) is False
    assert window_open(moment=utc(2026, 3, 9, 13, 0), zone=new_york, windows=NINE_TO_FIVE) is True  # 09:00 EDT
    assert window_open(moment=utc(2026, 3, 9, 12, 59), zone=new_york, windows=NINE_TO_FIVE) is False
    assert window_open(moment=utc(2026, 3, 9, 20, 59), zone=new_york, windows=NINE_TO_FIVE) is True  # 16:59 EDT
    assert window_open(moment=utc(2026, 3, 9, 21, 0), zone=new_york, windows=NINE_TO_FIVE) is False
    # Closed from Friday 17:00 EST: the next opening is Monday 09:00 EDT = 13:00 UTC, not 14:00.
    assert window_next_open(moment=utc(2026, 3, 6, 22, 0), zone=new_york, windows=NINE_TO_FIVE) == utc(2026, 3, 9, 13, 0)


def test_a_window_over_the_european_fall_back_and_a_night_window_on_the_missing_hour():
    berlin = zone_get("Europe/Berlin")
    sunday = {"sun": [["02:30", "04:00"]]}
    # Sunday 29 March 2026 (spring forward at 02:00 CET → 03:00 CEST): 02:30 does not exist; it is read
    # with the offset before the gap (+1), so the window opens at 03:30 CEST = 01:30 UTC and closes at
    # 04:00 CEST = 02:00 UTC.
    assert window_next_open(moment=utc(2026, 3, 28, 12, 0), zone=berlin, windows=sunday) == utc(2026, 3, 29, 1, 30)
    assert window_open(moment=utc(2026, 3, 29, 1, 59), zone=berlin, windows=sunday) is True
    assert window_open(moment=utc(2026, 3, 29, 2, 0), zone=berlin, windows=sunday) is False
    # Sunday 25 October 2026 (fall back at 03:00 CEST → 02:00 CET): 02:30-04:00 local spans 2.5 real hours.
    assert window_next_open(moment=utc(2026, 10, 24, 12, 0), zone=berlin, windows=sunday) == utc(2026, 10, 25, 0, 30)
    assert window_open(moment=utc(2026, 10, 25, 2, 59), zone=berlin, windows=sunday) is True
    assert window_open(moment=utc(2026, 10, 25, 3, 0), zone=berlin, windows=sunday) is False


def test_the_same_moment_is_inside_for_one_zone_and_outside_for_another():
    moment = utc(2026, 12, 1, 15, 0)  # Tuesday: 10:00 in New York, 16:00 in Berlin, 00:00 Wednesday in Tokyo
    assert window_open(moment=moment, zone=zone_get("America/New_York"), windows=NINE_TO_FIVE) is True
    assert window_open(moment=moment, zone=zone_get("Europe/Berlin"), windows=NINE_TO_FIVE) is True
    assert window_open(moment=moment, zone=zone_get("Asia/Tokyo"), windows=NINE_TO_FIVE) is False
    assert window_next_open(moment=moment, zone=zone_get("Asia/Tokyo"), windows=NINE_TO_FIVE) == utc(2026, 12, 2, 0, 0)
    assert window_open(moment=moment, zone=zone_get("Asia/Tokyo"), windows={}) is True  # no windows: any time
    assert window_next_open(moment=moment, zone=UTC, windows={"sat": []}) is None  # never opens


def test_bad_windows_and_zones_are_refused_naming_the_problem():
    with pytest.raises(ApplicationError, match="Unknown weekday 'monday'"):
        windows_clean({"monday": [["09:00", "17:00"]]})
    with pytest.raises(ApplicationError, match="must end after it starts"):
        windows_clean({"mon": [["17:00", "09:00"]]})
    with pytest.raises(ApplicationError, match="HH:MM"):
        windows_clean({"mon": [["9", "17:00"]]})
    with pytest.raises(ApplicationError, match="Unknown time zone 'Mars/Olympus'"):
        zone_get("Mars/Olympus")
    assert windows_clean({"fri": [["13:00", "24:00"], ["08:00", "12:00"]], "sat": []}) == {
        "fri": [["08:00", "12:00"], ["13:00", "24:00"]]}
