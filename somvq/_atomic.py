"""Writing a file atomically: into a temporary file beside it, then renamed into place.

A failure (an exception, an interrupt, a full disk) therefore never leaves a partial file,
and a reader never sees a half-written one. Used for model files
(:func:`somvq.io.save`), plots and the command line's outputs.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "writable_target", "OutputExistsError"]


class OutputExistsError(FileExistsError):
    """The destination exists and overwriting was not allowed."""


def writable_target(path: str | os.PathLike) -> Path:
    """The regular file that writing ``path`` replaces; refuse anything else.

    A symbolic link (or a chain of them) is followed, so that the file it points to is
    replaced and the link kept; a dangling link gives its target's path. A directory, a
    device (``/dev/null``), a FIFO or a socket is refused: renaming a new file over it would
    replace it (as root, in ``/dev``) or fail late.

    Raises
    ------
    ValueError
        ``path`` (or its target) exists and is not a regular file, or the link loops.
    """
    path = Path(path)
    if path.is_symlink():
        try:
            target = Path(os.path.realpath(path, strict=False))
        except OSError as exc:  # pragma: no cover - realpath(strict=False) rarely raises
            raise ValueError(f"{str(path)!r} is a symbolic link that cannot be resolved ({exc}).") from None
        if target.is_symlink():
            raise ValueError(f"{str(path)!r} is a symbolic link loop; refusing to write through it.")
        path = target
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ValueError(f"cannot write {str(path)!r}: {exc}.") from None
    if not stat.S_ISREG(mode):
        kind = (
            "directory"
            if stat.S_ISDIR(mode)
            else "character device"
            if stat.S_ISCHR(mode)
            else "block device"
            if stat.S_ISBLK(mode)
            else "FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "socket"
            if stat.S_ISSOCK(mode)
            else "special file"
        )
        raise ValueError(
            f"{str(path)!r} is a {kind}, not a regular file; refusing to replace it "
            "(write to a regular file path instead)."
        )
    return path


def atomic_write(
    path: str | os.PathLike, write: Callable[[BinaryIO], None], *, overwrite: bool = True
) -> Path:
    """Call ``write(handle)`` on a temporary file, then move it to ``path``.

    Parameters
    ----------
    path : path-like
        Destination; its directory must exist.
    write : callable
        Receives a binary file handle and writes the whole content.
    overwrite : bool, default=True
        ``False``: raise :class:`OutputExistsError` if ``path`` exists, checked atomically
        at the final step (a hard link, which never replaces an existing name) where the
        file system allows it.

    Returns
    -------
    Path of the written file: ``path``, or the file a symbolic link ``path`` points to.

    Raises
    ------
    ValueError
        ``path`` exists and is not a regular file (see :func:`writable_target`).
    """
    path = writable_target(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not overwrite and path.exists():
        raise OutputExistsError(f"{str(path)!r} already exists.")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # name the destination, not the temporary file
        raise type(exc)(exc.errno, f"cannot write {str(path)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; give it the permissions a normal open() would:
        # those of the file it replaces (open() keeps them), else 0666 less the umask.
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp_name, mode)
        if overwrite:
            os.replace(tmp_name, path)
        else:
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                raise OutputExistsError(f"{str(path)!r} already exists.") from None
            except OSError:
                # No hard links here (some network/FAT file systems): check, then rename.
                if path.exists():
                    raise OutputExistsError(f"{str(path)!r} already exists.") from None
                os.replace(tmp_name, path)
            else:
                os.unlink(tmp_name)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path
