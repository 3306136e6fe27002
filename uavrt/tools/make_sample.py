"""Write a small synthetic clip with audio (`python -m uavrt.tools.make_sample out.mp4`) so the
main job can run on a fresh machine without any input video.

--content scene (default): a held-out procedural scene (uavrt/tools/scenes.py: shapes, strokes,
textures, panning), downscaled x4 like the demo model's training data, so the demo's x4 output
can be compared with the picture it came from. --content pattern: the moving ramps + noise test
pattern of the video tests."""

import argparse
from fractions import Fraction

from ..runtime.video.synth import write_test_video

SAMPLE_SEED = 7  # offset from scenes.HELD_OUT_SEED: not a training clip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("output")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--fps", type=Fraction, default=Fraction(24))
    p.add_argument("--content", choices=("scene", "pattern"), default="scene")
    a = p.parse_args(argv)
    images = None
    if a.content == "scene":
        from .scenes import HELD_OUT_SEED, downscale_x4, scene_clip
        images = list(downscale_x4(scene_clip(HELD_OUT_SEED + SAMPLE_SEED, a.frames, 4 * a.height, 4 * a.width,
                                              pan=(1, 2))))
    write_test_video(a.output, frames=a.frames, width=a.width, height=a.height, fps=a.fps, codec="libx264",
                     pix_fmt="yuv420p", audio="aac", images=images)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
