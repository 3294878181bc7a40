"""Issue 25: the output lock never follows a link and never truncates or deletes a file it did not
make; one lock per path is not shared by two threads of one process."""

from __future__ import annotations

import os
import threading

import pytest
from hwnas.core import lock


def test_planted_symlink_is_refused_and_neither_victim_nor_link_is_touched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / lock.LOCK_NAME).symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link") as ei:
        with lock.output_lock(out, "--out", is_dir=True):
            pass
    assert "\n" not in str(ei.value) and "remove it" in str(ei.value)
    assert victim.read_text() == "precious\n"
    assert (out / lock.LOCK_NAME).is_symlink()


def test_dangling_symlink_creates_nothing_at_its_target(tmp_path):
    target = tmp_path / "elsewhere.txt"
    (tmp_path / ".table.parquet.lock").symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        lock.acquire(tmp_path / "table.parquet", is_dir=False)
    assert not target.exists()


def test_hard_link_and_foreign_file_under_the_lock_name_are_left_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    os.link(victim, out / lock.LOCK_NAME)
    with pytest.raises(OSError, match="hard links"):
        lock.acquire(out, is_dir=True)
    assert victim.read_text() == "precious\n" and (out / lock.LOCK_NAME).exists()

    other = tmp_path / "other"
    other.mkdir()
    (other / lock.LOCK_NAME).write_text("my notes, not a lock\n")
    with pytest.raises(OSError, match="not a lock record"):
        lock.acquire(other, is_dir=True)
    assert (other / lock.LOCK_NAME).read_text() == "my notes, not a lock\n"


def test_release_does_not_delete_a_file_swapped_in_under_the_lock_name(tmp_path):
    lock.acquire(tmp_path, is_dir=True)
    lf = tmp_path / lock.LOCK_NAME
    lf.unlink()
    lf.write_text("someone else's\n")  # a new file under the name, not the one we locked
    lock.release(tmp_path, is_dir=True)
    assert lf.read_text() == "someone else's\n"


def test_a_stale_lock_record_is_still_taken_over(tmp_path):
    lf = tmp_path / lock.LOCK_NAME
    lf.write_text('{"pid": 999999999, "host": "x", "started": 0, "command": "hwnas search"}\n')
    with lock.output_lock(tmp_path, is_dir=True):
        assert lock.read_owner(lf)["pid"] == os.getpid()
    assert not lf.exists()


def test_another_thread_of_this_process_is_refused_the_held_lock(tmp_path):
    errors = []
    with lock.output_lock(tmp_path, is_dir=True):
        with lock.output_lock(tmp_path, is_dir=True):  # the same thread: re-entrant
            pass

        def other():
            try:
                lock.acquire(tmp_path, "--out", is_dir=True)
            except lock.LockedError as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1 and "another thread of this process" in errors[0]
