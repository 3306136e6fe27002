"""Write a small synthetic clip with audio (`python -m uavrt.tools.make_sample out.mp4`) so the
main job can run on a fresh machine without any input video."""

import argparse
from fractions import Fraction

from ..runtime.video.synth import write_test_video


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("output")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--fps", type=Fraction, default=Fraction(24))
    a = p.parse_args(argv)
    write_test_video(a.output, frames=a.frames, width=a.width, height=a.height, fps=a.fps, codec="libx264",
                     pix_fmt="yuv420p", audio="aac")
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
