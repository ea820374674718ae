"""What minisumm writes gets the permissions any other tool's files get: 0o666 / 0o777 less the umask."""

import os
import stat

import pytest

from minisumm.tools.atomic import staged_folder, write_text
from test_checkpoint import saved


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_and_staged_folders_respect_the_umask(tmp_path, umask):
    write_text(tmp_path / "summary.json", "{}")
    with staged_folder(tmp_path / "best") as staging:
        (staging / "weights.safetensors").write_bytes(b"x")
    assert mode(tmp_path / "summary.json") == 0o666 & ~umask  # -rw-r--r-- under the usual 022
    assert mode(tmp_path / "best") == 0o777 & ~umask
    assert mode(tmp_path / "best" / "weights.safetensors") == 0o666 & ~umask


def test_a_checkpoint_folder_and_its_files_are_readable_by_others_under_umask_022(tmp_path):
    previous = os.umask(0o022)
    try:
        folder, _ = saved(tmp_path)
    finally:
        os.umask(previous)
    assert mode(folder) == 0o755
    assert {mode(path) for path in folder.iterdir()} == {0o644}
