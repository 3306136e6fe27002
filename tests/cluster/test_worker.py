"""The worker and its boundaries in-process (no Ray needed): what a Ray actor runs."""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np
import pytest

from uavrt.cluster import ClusterOptions, ModelSpec
from uavrt.cluster.worker import UpscaleWorker, chunk_digest
from uavrt.config import RunConfig, SamplerConfig, WindowConfig
from uavrt.errors import ConfigError, InputError, OutputExistsError
from uavrt.runtime.plan import Span
from uavrt.runtime.video import open_frames
from uavrt.runtime.video.synth import write_test_video

CFG = RunConfig(sampler=SamplerConfig(steps=1, guidance_scale=1.0), window=WindowConfig(frames=4, overlap=1))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "clip.mp4"
    write_test_video(p, frames=9, width=16, height=16, fps=Fraction(12), codec="libx264", pix_fmt="yuv420p")
    with open_frames(p) as r:
        frames = np.stack([f.rgb for f in r])
    return p, frames


@pytest.fixture(scope="module")
def worker():
    return UpscaleWorker(ModelSpec(demo=True, run=CFG), "w0")


def test_worker_decoding_its_own_frames_matches_shipped_frames(worker, clip):
    path, frames = clip
    for span in (Span(3, 7), Span(5, 9), Span(0, 4)):  # forward, overlapping, then backwards (reopen)
        chunk = frames[span.start:span.stop]
        ff = frozenset({span.start})
        shipped, _ = worker.process(CFG, chunk, span, ff)
        read, stats = worker.process_file(CFG, str(path), span, ff, chunk_digest(chunk))
        assert np.array_equal(shipped.frames, read.frames)
        assert shipped.blend.keys() == read.blend.keys() == ff
        assert all(np.array_equal(shipped.blend[f], read.blend[f]) for f in ff)
        assert stats["frames"] == span.size and stats["worker"] == "w0"


def test_worker_refuses_frames_that_decode_differently(worker, clip):
    path, frames = clip
    with pytest.raises(InputError, match="decodes differently"):
        worker.process_file(CFG, str(path), Span(0, 4), frozenset(), chunk_digest(frames[0:4]) ^ 1)


@pytest.mark.parametrize("chunk", [np.zeros((4, 16, 16, 3), np.float32), np.zeros((3, 16, 16, 3), np.uint8),
                                   np.zeros((4, 16, 16), np.uint8)])
def test_worker_refuses_a_malformed_window(worker, chunk):
    with pytest.raises(InputError, match=r"expected uint8 frames \[4, h, w, 3\]"):
        worker.process(CFG, chunk, Span(0, 4), frozenset())


def test_errors_cross_process_boundaries_intact():
    for e in (ConfigError("frames", "nfs", "'ship' or 'shared'", "hint"), OutputExistsError("/x.mp4"),
              InputError("bad")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
    assert pickle.loads(pickle.dumps(ConfigError("a", 1, "b"))).param == "a"


def test_options_and_spec_are_validated():
    with pytest.raises(ConfigError, match="frames"):
        ClusterOptions(frames="nfs")
    with pytest.raises(ConfigError, match="workers"):
        ClusterOptions(workers=0)
    with pytest.raises(ConfigError, match="weights"):
        ModelSpec()  # neither weights nor demo
