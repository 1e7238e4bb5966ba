"""The caller-audio fixtures (shared/ beside the repository, or SWITCHBOARD_CALLER_AUDIO_DIR) are where the
voice tests look: a wrong path would otherwise show up as calls that never hear the caller."""
from devtools.doubles.audio import FIXTURES_DIR


def test_caller_audio_fixtures_are_found():
    assert FIXTURES_DIR.is_dir(), f"no caller-audio fixtures at {FIXTURES_DIR}"
    assert (FIXTURES_DIR / "hello.wav").is_file() and (FIXTURES_DIR / "TRANSCRIPTS.tsv").is_file()
