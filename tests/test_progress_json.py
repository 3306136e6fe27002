"""--progress json's printer and the Segment rules, without a model."""

import io
import json
from fractions import Fraction

import pytest

from uavrt.commands.common import JsonProgress, Progress
from uavrt.errors import ConfigError
from uavrt.runtime.files import Segment
from uavrt.runtime.video.info import Frame


def test_every_event_is_one_json_line_with_time_and_memory():
    buf = io.StringIO()
    p = JsonProgress(buf)
    for ev in [("video", 0, 10), ("window_started", 0, 4), ("step", 1, 2), ("frames", 4, None), ("frames", 8, None),
               ("written", 10, 10), ("workers", 0, {"w0": {"state": "idle"}})]:
        p(*ev)
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["video", "window_started", "step", "frames", "frames", "written", "workers"]
    assert events[1]["start"] == 0 and events[1]["stop"] == 4 and events[2]["steps"] == 2
    assert events[3]["total"] == 10 and "eta_s" not in events[3] and events[4]["eta_s"] >= 0
    assert events[6]["workers"] == {"w0": {"state": "idle"}}
    assert all(e["peak_rss_mb"] > 0 for e in events)


def test_the_bars_ignore_kinds_they_do_not_draw():
    p = Progress(True)
    p("window_started", 0, 4)
    p("written", 1, 10)
    assert p.bars == {}


def _frames(n, fps=Fraction(10)):
    return [Frame(None, i * 100, i) for i in range(n)]  # pts in 1/1000 s


@pytest.mark.parametrize("seg,indices", [
    (Segment(start_frame=3, frames=4), [3, 4, 5, 6]),
    (Segment(start_s=Fraction("0.3"), duration_s=Fraction("0.4")), [3, 4, 5, 6]),
    (Segment(start_frame=8), [8, 9]),
    (Segment(frames=2), [0, 1]),
    (Segment(start_frame=20), []),
])
def test_segment_selects_by_index_or_time(seg, indices):
    assert [f.index for f in seg.select(iter(_frames(10)), Fraction(10), Fraction(1, 1000))] == indices


@pytest.mark.parametrize("kw,param", [({"start_frame": -1}, "start"), ({"frames": 0}, "frames"),
                                      ({"duration_s": Fraction(0)}, "duration"),
                                      ({"start_frame": 1, "start_s": Fraction(1)}, "start"),
                                      ({"frames": 1, "duration_s": Fraction(1)}, "frames/duration")])
def test_bad_segments_name_the_parameter(kw, param):
    with pytest.raises(ConfigError) as e:
        Segment(**kw)
    assert e.value.param == param


@pytest.mark.parametrize("text,value", [("120", 120), ("0.16s", Fraction(4, 25)), ("1:02.5", Fraction(125, 2)),
                                        ("0:01:02.5", Fraction(125, 2)), ("12", 12), ("12s", Fraction(12))])
def test_start_is_a_frame_index_or_a_time(text, value):
    from uavrt.commands.upscale import _start
    v = _start(text)
    assert v == value and type(v) is type(value)
