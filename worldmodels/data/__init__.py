from worldmodels.data.synthetic import MovingSprites  # noqa: F401  (tiny test videos)
from worldmodels.data.video_folder import VideoFolder  # noqa: F401  (your own videos)


def __getattr__(name):
    # Atari names load on first access, so `python -m worldmodels.data.atari` (the recording
    # CLI) does not find its own module already imported by this package (a runpy warning).
    if name in ("AtariClips", "AtariConfig"):
        from worldmodels.data import atari

        return getattr(atari, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
